package integration

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

// TestLandlockWX: a binary written into a writable mount cannot be executed. /tmp is noexec as
// well; /scratch is a tmpfs the spec asks to be exec, so only Landlock's W^X rule (execute only
// from the read-only root) can refuse it there.
func TestLandlockWX(t *testing.T) {
	e := testenv.NewEnv(t, "tenant-landlock")
	spec := testenv.Spec(probe("exec-from", "/tmp", "/scratch", "/dev/shm"), testenv.WithMount(specs.Mount{
		Destination: "/scratch", Type: "tmpfs", Source: "tmpfs", Options: []string{"rw", "nosuid", "nodev", "exec", "size=16m"},
	}))
	r, _ := e.Run(spec)
	if len(r.ExecFrom) != 3 {
		t.Fatalf("exec-from reported %d dirs: %+v", len(r.ExecFrom), r.ExecFrom)
	}
	for _, x := range r.ExecFrom {
		if x.CopyError != "" {
			t.Errorf("%s: writing the copy failed (%s): the directory should be writable", x.Dir, x.CopyError)
			continue
		}
		if x.ExecError != "EACCES" {
			t.Errorf("%s: executing a freshly written binary: %q, want EACCES", x.Dir, x.ExecError)
		}
		if !x.NoExec {
			t.Logf("%s is an exec mount: EACCES came from Landlock", x.Dir)
		}
	}
}
