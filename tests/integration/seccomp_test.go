package integration

import (
	"runtime"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

// TestSeccompSpecProfileStacks: a spec's own profile is loaded in addition to the floor's, never
// instead of it. The spec's profile allows everything except getppid (EACCES); inside, getppid
// fails as the spec asks AND every forbidden operation still gets the floor's EPERM.
func TestSeccompSpecProfileStacks(t *testing.T) {
	arch, ok := map[string]specs.Arch{"amd64": specs.ArchX86_64, "arm64": specs.ArchAARCH64}[runtime.GOARCH]
	if !ok {
		t.Skipf("no seccomp architecture name for %s in this test", runtime.GOARCH)
	}
	e := testenv.NewEnv(t, "tenant-seccomp")
	eacces := uint(13)
	spec := testenv.Spec(probe("status", "forbidden"))
	spec.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{arch},
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: &eacces}},
	}
	r, _ := e.Run(spec)
	if r.Status.PPid != -13 {
		t.Errorf("getppid returned %d, want -13 (EACCES) from the spec's own profile", r.Status.PPid)
	}
	if r.Status.Seccomp != 2 || r.Status.SeccompFilters < 2 {
		t.Errorf("seccomp mode %d with %d filters, want the floor's and the spec's (≥ 2)", r.Status.Seccomp, r.Status.SeccompFilters)
	}
	assertForbidden(t, r.Forbidden)
}
