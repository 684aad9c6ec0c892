package attacks

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

// TestMemfdExec (issue 8 §4): bytes that are not in the image, written into a memfd, must not
// execute. Before the fix memfd_create + write + execve("/proc/self/fd/N") ran any payload and
// vm.memfd_noexec read 0 inside. Now the runtime raises it to 2 in the container's pid namespace:
// memfd_create seals new memfds non-executable (chmod refused) and refuses MFD_EXEC.
func TestMemfdExec(t *testing.T) {
	e := testenv.NewEnv(t, "tenant-attacks")
	for name, spec := range map[string]*specs.Spec{
		"minimal":   testenv.Spec(testenv.ProbeArgs("memfd-exec")),
		"runc-spec": testenv.RuncSpec(testenv.ProbeArgs("memfd-exec"), testenv.WithCaps("CAP_CHOWN", "CAP_FOWNER", "CAP_DAC_OVERRIDE")),
	} {
		t.Run(name, func(t *testing.T) {
			r, _ := e.For(t).Run(spec)
			m := r.MemfdExec
			if m == nil {
				t.Fatalf("no memfdExec section: %+v", r.Errors)
			}
			t.Logf("inside: %+v", *m)
			if m.Exec == "" {
				t.Errorf("ESCAPE: a payload written into a memfd executed")
			}
			if m.Sysctl != "2" {
				t.Errorf("vm.memfd_noexec inside = %q, want 2", m.Sysctl)
			}
			if m.Create != "" {
				t.Errorf("memfd_create(MFD_CLOEXEC) failed (%s): software that uses memfds must keep working", m.Create)
			}
			if m.CreateExec != "EACCES" {
				t.Errorf("memfd_create(MFD_EXEC) = %q, want EACCES", m.CreateExec)
			}
			if m.Chmod == "ok" {
				t.Errorf("fchmod 0755 of the memfd succeeded: it is not sealed against exec")
			}
		})
	}
}

// TestWritableMountsNoexec (issue 8 §4): every directory the container can write to is a noexec
// mount, so nothing written at run time executes even where no Landlock rule would stop it. A
// spec's "exec" after "noexec" no longer undoes the floor's option (mount options apply in order).
func TestWritableMountsNoexec(t *testing.T) {
	e := testenv.NewEnv(t, "tenant-attacks")
	dirs := []string{"/tmp", "/run", "/var/tmp", "/dev/shm", "/dev/mqueue", "/dev", "/scratch"}
	spec := testenv.RuncSpec(testenv.ProbeArgs(append([]string{"exec-from"}, dirs...)...), testenv.WithMount(specs.Mount{
		Destination: "/scratch", Type: "tmpfs", Source: "tmpfs", Options: []string{"noexec", "exec", "suid", "dev", "size=16m"},
	}))
	r, _ := e.Run(spec)
	if len(r.ExecFrom) != len(dirs) {
		t.Fatalf("exec-from reported %d dirs: %+v", len(r.ExecFrom), r.ExecFrom)
	}
	for _, x := range r.ExecFrom {
		switch {
		case x.CopyError == "" && x.ExecError == "":
			t.Errorf("ESCAPE: %s: a binary written at run time executed", x.Dir)
		case !x.NoExec:
			t.Errorf("%s is not a noexec mount (copy: %q, exec: %q)", x.Dir, x.CopyError, x.ExecError)
		default:
			t.Logf("%s: noexec mount; copy %q, exec %q", x.Dir, x.CopyError, x.ExecError)
		}
	}
}
