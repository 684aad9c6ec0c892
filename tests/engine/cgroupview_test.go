package engine

import (
	"strings"
	"testing"

	"bulwark.dev/bulwark/tests/internal/clitest"
)

// TestRunSeesOwnLimits (issue 9): inside `bulwark run`, /sys/fs/cgroup shows the container's own
// cgroups, read-only, so a workload reads its limits (JVMs, Go's GOMAXPROCS/GOMEMLIMIT tooling,
// nginx). It was empty.
func TestRunSeesOwnLimits(t *testing.T) {
	f := newFixture(t)
	script := `cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes
cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max
touch /sys/fs/cgroup/x 2>/dev/null && echo writable || echo read-only`
	r := clitest.Run(t, f.root, "run", "--rm", "--memory", "96m", "--pids-limit", "77", "busybox:1", "sh", "-c", script)
	if r.Code != 0 {
		t.Fatalf("run: exit %d: %s", r.Code, r.Stderr)
	}
	if want := "100663296\n77\nread-only\n"; r.Stdout != want {
		t.Errorf("inside: %q, want %q", r.Stdout, want)
	}
	if strings.Contains(r.Stdout, "writable") {
		t.Error("/sys/fs/cgroup is writable inside")
	}
	f.assertNothingLeft(t)
}
