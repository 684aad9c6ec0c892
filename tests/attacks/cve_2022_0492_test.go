package attacks

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

// TestCVE_2022_0492 replays the cgroup v1 release_agent escape: unshare a user and cgroup
// namespace to become "root", mount a v1 hierarchy, write a host program path into release_agent
// and let the cgroup empty. Each step must fail: the unshare and the mount with EPERM (seccomp),
// and every release_agent visible inside (the runc-style spec asks for /sys/fs/cgroup) must not
// open for writing. On the host side the container's cgroups have notify_on_release cleared.
func TestCVE_2022_0492(t *testing.T) {
	e := testenv.NewEnv(t, "tenant-attacks")
	for name, spec := range map[string]*specs.Spec{
		"minimal":      testenv.Spec(testenv.ProbeArgs("forbidden", "mounts")),
		"runc-cgroups": testenv.RuncSpec(testenv.ProbeArgs("forbidden", "mounts")),
	} {
		t.Run(name, func(t *testing.T) {
			e := e.For(t)
			r, _ := e.Run(spec)
			f := r.Forbidden
			if got := f["unshare_user_cgroup_mnt"]; got != "EPERM" {
				t.Errorf("unshare(CLONE_NEWUSER|CLONE_NEWCGROUP|CLONE_NEWNS): %q, want EPERM", got)
			}
			if got := f["mount_cgroup_v1"]; got != "EPERM" {
				t.Errorf("mount -t cgroup: %q, want EPERM", got)
			}
			for k, v := range f {
				if strings.HasPrefix(k, "release_agent:") {
					if v == "" {
						t.Errorf("ESCAPE: %s opens for writing", k)
					} else if v != "EROFS" && v != "EACCES" && v != "ENOENT" {
						t.Errorf("%s: %q, want EROFS or EACCES", k, v)
					} else {
						t.Logf("%s: %s", k, v)
					}
				}
			}
			for _, m := range r.Mounts {
				if (m.FSType == "cgroup" || m.FSType == "cgroup2") && !m.Has("ro") {
					t.Errorf("writable cgroupfs inside at %s: %+v", m.Mountpoint, m)
				}
			}
		})
	}

	// notify_on_release: the host runs release_agent for a cgroup only when it is set, so the
	// container's cgroups must have it cleared (checked on a live init).
	c := e.MustCreate(nil, testenv.Spec(testenv.ProbeArgs()))
	pid := c.MustState().Pid
	checked := 0
	for _, ctl := range []string{"memory", "pids", "cpu", "freezer", "devices", "blkio", "cpuset"} {
		p, err := testenv.HostCgroupPath(pid, ctl)
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(p, "notify_on_release"))
		if err != nil {
			continue
		}
		checked++
		if v := strings.TrimSpace(string(b)); v != "0" {
			t.Errorf("%s/notify_on_release is %s", p, v)
		}
	}
	t.Logf("notify_on_release checked in %d v1 hierarchies", checked)
}
