package attacks

import (
	"os"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/sandbox"
	"bulwark.dev/bulwark/tests/internal/testenv"
)

// TestOwnCgroupsOnly (issue 8 §6, issue 9): a container sees its own cgroups at /sys/fs/cgroup,
// read-only, and nothing of the host's. Before the fix, on a hybrid host (v1 plus a unified
// hierarchy) the container stayed in the host's root of the unified and name=systemd
// hierarchies, so the spec's /sys/fs/cgroup mount showed the host's root cgroup.procs (every
// host process, as pid 0 inside) and host-wide counters; without such a mount (bulwark run)
// /sys/fs/cgroup was empty and a workload could not read its own limits.
func TestOwnCgroupsOnly(t *testing.T) {
	e := testenv.NewEnv(t, "tenant-attacks")
	const mem, pids = 96 << 20, 77
	opts := []testenv.SpecOpt{testenv.WithMemoryLimit(mem), testenv.WithPidsLimit(pids)}
	for name, spec := range map[string]*specs.Spec{
		"minimal":   testenv.Spec(testenv.ProbeArgs("cgroup", "mounts"), opts...),
		"runc-spec": testenv.RuncSpec(testenv.ProbeArgs("cgroup", "mounts"), opts...),
	} {
		t.Run(name, func(t *testing.T) {
			r, _ := e.For(t).Run(spec)
			if r.Cgroup == nil {
				t.Fatalf("no cgroup section: %v", r.Errors)
			}
			seen := 0
			for _, m := range r.Mounts {
				if m.FSType != "cgroup" && m.FSType != "cgroup2" {
					continue
				}
				seen++
				if !strings.HasPrefix(m.Mountpoint+"/", "/sys/fs/cgroup/") || !m.Has("ro") {
					t.Errorf("cgroupfs at %s (%v): want read-only under /sys/fs/cgroup", m.Mountpoint, m.Options)
				}
			}
			if seen == 0 {
				t.Errorf("no cgroupfs inside: the workload cannot read its own limits")
			}
			for mp, ps := range r.Cgroup.Procs {
				for _, p := range ps {
					if p == 0 || len(ps) > 2 {
						t.Errorf("%s/cgroup.procs lists %v: the host's cgroup, not the container's own", mp, ps)
						break
					}
				}
			}
			l := r.Cgroup.Limits
			if l["/sys/fs/cgroup/memory/memory.limit_in_bytes"] != strconv.Itoa(mem) && l["/sys/fs/cgroup/memory.max"] != strconv.Itoa(mem) {
				t.Errorf("memory limit not readable inside: %v", l)
			}
			if l["/sys/fs/cgroup/pids/pids.max"] != strconv.Itoa(pids) && l["/sys/fs/cgroup/pids.max"] != strconv.Itoa(pids) {
				t.Errorf("pids limit not readable inside: %v", l)
			}
			t.Logf("limits inside: %v; cgroupfs mounts: %d", l, seen)
		})
	}
	// From the host: the container's init, and a process exec'd into it, have the container's
	// own cgroup in every hierarchy.
	c := e.MustCreate(nil, testenv.Spec([]string{"/bin/sleep", "30"}))
	if err := c.Start(); err != nil {
		t.Fatalf("start: %v%s", err, c.ErrText())
	}
	p, err := c.Exec(&specs.Process{Args: []string{"/bin/sleep", "30"}, Cwd: "/"}, sandbox.IO{})
	if err != nil {
		t.Fatalf("exec: %v", err)
	}
	for who, pid := range map[string]int{"init": c.MustState().Pid, "exec'd process": p.Pid} {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if f := strings.SplitN(line, ":", 3); len(f) == 3 && !strings.HasSuffix(f[2], "/"+c.ID) {
				t.Errorf("%s is not in the container's own cgroup of hierarchy %q", who, line)
			}
		}
	}
}
