package engine

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"bulwark.dev/bulwark/internal/runroot"
	"bulwark.dev/bulwark/tests/internal/clitest"
	"bulwark.dev/bulwark/tests/internal/testenv"
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

// TestForegroundRemoveRecordInRunRoot: a foreground `run --rm` keeps its record in the run root
// (a tmpfs by default; here the suite's temporary directory), never on the state root's disk, and is seen there exactly as before: ps lists it,
// inspect shows it, exec runs in it, its name is taken, stop and kill end it (its client then
// removes it) — each in the audit trail — and nothing is left.
func TestForegroundRemoveRecordInRunRoot(t *testing.T) {
	f := newFixture(t)
	for _, end := range []string{"stop", "kill"} {
		id := f.name(t, "fgrm")
		cmd := startReady(t, "--root", f.root, "run", "--rm", "--name", id)
		if _, err := os.Stat(filepath.Join(runroot.Of(f.root), "engine", id, "meta.json")); err != nil {
			t.Errorf("record in the run root: %v", err)
		}
		if _, err := os.Stat(filepath.Join(f.root, "engine", id)); !os.IsNotExist(err) {
			t.Errorf("record on the state root: %v", err)
		}
		if ps := clitest.Must(t, f.root, "ps"); !strings.Contains(ps, id) {
			t.Errorf("ps does not list %s:\n%s", id, ps)
		}
		if c := inspect(t, f, id); c.Status != "running" {
			t.Errorf("inspect: %s", c.Status)
		}
		if out := clitest.Must(t, f.root, "exec", id, "echo", "in"); out != "in\n" {
			t.Errorf("exec: %q", out)
		}
		if r := clitest.Run(t, f.root, "run", "-d", "--name", id, "busybox:1", "true"); r.Code != 125 || !strings.Contains(r.Stderr, "already in use") {
			t.Errorf("a detached run with the same name: exit %d %s", r.Code, r.Stderr)
		}
		if end == "stop" {
			clitest.Must(t, f.root, "stop", "-t", "1", id)
		} else {
			clitest.Must(t, f.root, "kill", id)
		}
		cmd.Wait()
		if r := clitest.Run(t, f.root, "inspect", id); r.Code == 0 {
			t.Errorf("%s: the container is still there after its client ended", end)
		}
		action := map[string]string{"stop": "container.stop", "kill": "container.signal"}[end]
		want := []string{"container.create", "container.start", "container.exec.start", "container.exit", "container.delete"}
		if got := actions(f.records(t, id)); !inOrder(got, want) || !slices.Contains(got, action) {
			t.Errorf("%s: audit trail %v, want %v in order and %s", end, got, want, action)
		}
	}
	f.assertNothingLeft(t)
}

// TestRunRootOnTmpfsTidied: once its last container is gone, a run root on a tmpfs (as
// /run/bulwark/roots is) is removed, the sandbox's shared directories (the masked directories'
// cover, the cgroup skeleton) with it. They are directories of empty directories, which the
// tidying took for content and kept, and the run root with them: every state root a run had
// used left its /run/bulwark/roots/<digest>/shared behind. The state root's supervisor, which
// watched the run, tidies it when it leaves: the run's client left it for the next run while
// the supervisor stays (each `run --rm` tidied it before it exited, and the next made it again:
// issue 14), and nothing of it stays once the supervisor has gone.
func TestRunRootOnTmpfsTidied(t *testing.T) {
	f := newFixture(t)
	run := filepath.Join(testenv.TmpfsDir(t), "run")
	clitest.Must(t, f.root, "--run-root", run, "run", "--rm", "--name", f.name(t, "tidy"), "busybox:1", "true")
	if len(supervisorProcs(t, f.root)["worker"]) == 1 {
		if _, err := os.Stat(filepath.Join(run, "shared")); err != nil {
			t.Errorf("the run's client tidied the run root its supervisor serves: %v", err)
		}
	}
	waitFor(t, func() bool { return len(supervisorProcs(t, f.root)) == 0 })
	var left []string
	filepath.WalkDir(run, func(p string, _ os.DirEntry, err error) error {
		if err == nil {
			left = append(left, p)
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("the run root is left: %v", left)
	}
	f.assertNothingLeft(t)
}
