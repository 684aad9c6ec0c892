package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bulwark.dev/bulwark/tests/internal/clitest"
)

// TestDetachedRunRoot: a detached container run with --run-root keeps its sandbox state there, so
// that exec, stop and rm given the same run root find it. The supervisor was started without it
// and kept the state in the state root's default run root: exec said the container had no
// sandbox (BenchmarkExec failed so).
func TestDetachedRunRoot(t *testing.T) {
	f := newFixture(t)
	run := filepath.Join(t.TempDir(), "run")
	id := f.name(t, "runroot")
	out := clitest.Must(t, f.root, "--run-root", run, "run", "-d", "--name", id, "busybox:1", "sleep", "60")
	if strings.TrimSpace(out) != id {
		t.Fatalf("run -d printed %q, want the id %s", out, id)
	}
	if out := clitest.Must(t, f.root, "--run-root", run, "exec", id, "echo", "in"); out != "in\n" {
		t.Errorf("exec: %q", out)
	}
	if _, err := os.Stat(filepath.Join(run, "containers", id)); err != nil {
		t.Errorf("the container's sandbox state is not in the run root given: %v", err)
	}
	clitest.Must(t, f.root, "--run-root", run, "rm", "-f", id)
	f.assertNothingLeft(t)
}
