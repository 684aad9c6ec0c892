package integration

import (
	"errors"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/sandbox"
	"bulwark.dev/bulwark/tests/internal/testenv"
)

// TestLandlockWX: a binary written into a writable mount cannot be executed. /tmp is noexec as
// well; /scratch is a tmpfs the spec asks to be exec: the floor makes it noexec anyway, and
// Landlock's W^X rule (execute only from the read-only root) refuses it too.
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

// TestLoopbackTCP: inside its own network namespace a container binds and connects freely on
// loopback, any port (the namespace is the boundary; the floor sets no TCP port rule). On the
// old floor every bind and connect failed with a bare EACCES from Landlock.
func TestLoopbackTCP(t *testing.T) {
	e := testenv.NewEnv(t, "tenant-landlock")
	r, _ := e.Run(testenv.Spec(probe("tcp", "8080", "5432")))
	for _, p := range []string{"8080", "5432"} {
		for _, k := range []string{"bind:" + p, "connect:" + p} {
			if got, ok := r.TCP[k]; !ok || got != "" {
				t.Errorf("%s on 127.0.0.1: %q (reported %v), want success", k, got, ok)
			}
		}
	}
}

// TestRetiredTCPAnnotationsRefused: the annotations that once opened Landlock TCP ports are
// refused at create with the reason, not accepted and ignored.
func TestRetiredTCPAnnotationsRefused(t *testing.T) {
	e := testenv.NewEnv(t, "tenant-landlock")
	for _, a := range []string{"dev.bulwark.landlock.bind-tcp", "dev.bulwark.landlock.connect-tcp"} {
		spec := testenv.Spec(probe("tcp", "8080"))
		spec.Annotations = map[string]string{a: "8080"}
		_, err := e.Create(nil, spec)
		if !errors.Is(err, sandbox.ErrFloor) || !strings.Contains(err.Error(), a) {
			t.Errorf("%s: create = %v, want the floor's refusal naming it", a, err)
		}
	}
}
