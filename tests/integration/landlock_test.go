package integration

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

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

// TestLandlockTCP: without annotations the process may neither bind nor connect over TCP; the
// bind/connect annotations open exactly the ports they name. EACCES is Landlock's answer (the
// kernel alone would let the bind succeed and answer the connect with ECONNREFUSED).
func TestLandlockTCP(t *testing.T) {
	e := testenv.NewEnv(t, "tenant-landlock")
	r, _ := e.Run(testenv.Spec(probe("tcp", "8080")))
	for _, k := range []string{"bind:8080", "connect:8080"} {
		if got := r.TCP[k]; got != "EACCES" {
			t.Errorf("no annotations, %s: %q, want EACCES", k, got)
		}
	}
	spec := testenv.Spec(probe("tcp", "8080", "8081"))
	spec.Annotations = map[string]string{
		"dev.bulwark.landlock.bind-tcp":    "8080",
		"dev.bulwark.landlock.connect-tcp": "8080",
	}
	r, _ = e.Run(spec)
	want := map[string]string{"bind:8080": "", "connect:8080": "", "bind:8081": "EACCES", "connect:8081": "EACCES"}
	for k, w := range want {
		if got := r.TCP[k]; got != w {
			t.Errorf("port 8080 opened by annotation, %s: %q, want %q", k, got, w)
		}
	}
}
