package sandbox

import (
	"os"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/sandbox/internal/idmap"
)

// TestCreateLimitFailureLeavesNothing: the cgroup's limits are written while the setup child
// starts (issue 14); one the kernel refuses (a cpuset of a CPU the host lacks) fails the create
// before the child gets its plan, and nothing is left: no process or cgroup (leakCheck), no
// state directory, no id range held.
func TestCreateLimitFailureLeavesNothing(t *testing.T) {
	needRoot(t)
	leakCheck(t, "lim1")
	r := newTestRuntime(t)
	bundle, spec := busyboxBundle(t)
	if spec.Linux.Resources == nil {
		spec.Linux.Resources = &specs.LinuxResources{}
	}
	spec.Linux.Resources.CPU = &specs.LinuxCPU{Cpus: "4095"}
	_, err := r.Create("lim1", bundle, spec, IO{})
	if err == nil || !strings.Contains(err.Error(), "cpuset.cpus") {
		t.Fatalf("create: %v, want the cpuset write's error", err)
	}
	t.Logf("reported: %v", err)
	assertNoStateNorRange(t, r, "lim1")
}

// TestCreateRefusedAfterCgroupLeavesNothing: a create refused once the cgroup is made (a process
// user outside the id range, checked after the range is taken; the cgroup is made beside it)
// leaves no cgroup, thread of the runtime in it, state directory or id range (leakCheck).
func TestCreateRefusedAfterCgroupLeavesNothing(t *testing.T) {
	needRoot(t)
	leakCheck(t, "late1")
	r := newTestRuntime(t)
	bundle, spec := busyboxBundle(t)
	spec.Process.User.UID = 70000
	_, err := r.Create("late1", bundle, spec, IO{})
	if err == nil || !strings.Contains(err.Error(), "outside the container's") {
		t.Fatalf("create: %v, want the user refused", err)
	}
	assertNoStateNorRange(t, r, "late1")
}

// assertNoStateNorRange checks a refused create of id left no state directory and holds no id range.
func assertNoStateNorRange(t *testing.T, r *Runtime, id string) {
	t.Helper()
	if _, err := os.Stat(r.containerDir(id)); !os.IsNotExist(err) {
		t.Errorf("state dir left behind: %v", err)
	}
	alloc, err := idmap.Open(r.opts.IDMapDir)
	if err != nil {
		t.Fatal(err)
	}
	if held, err := alloc.List(); err != nil || len(held) != 0 {
		t.Errorf("id ranges held: %+v, %v", held, err)
	}
}
