package integration

import (
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

// TestProcessFields: the spec's user, additional groups, env, cwd, hostname and rlimits reach the
// process; a non-root user has no capabilities at all, even ones requested.
func TestProcessFields(t *testing.T) {
	e := testenv.NewEnv(t, "tenant-proc")
	spec := testenv.Spec(probe("ids", "caps", "env", "cwd", "host", "rlimits"),
		testenv.WithCwd("/tmp"), testenv.WithHostname("proc-host"), testenv.WithCaps("CAP_CHOWN"))
	spec.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1001}}
	spec.Process.Env = append(spec.Process.Env, "BULWARK_TEST=yes")
	spec.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 512, Soft: 256}}
	r, _ := e.Run(spec)
	if r.IDs.UID != 1000 || r.IDs.EUID != 1000 || r.IDs.GID != 1000 || r.IDs.EGID != 1000 {
		t.Errorf("ids %+v, want 1000:1000", r.IDs)
	}
	if !slices.Contains(r.IDs.Groups, 1001) {
		t.Errorf("groups %v lack 1001", r.IDs.Groups)
	}
	if !slices.Contains(r.Env, "BULWARK_TEST=yes") {
		t.Errorf("env %v lacks BULWARK_TEST=yes", r.Env)
	}
	if r.Cwd.Path != "/tmp" || !r.Cwd.InRoot {
		t.Errorf("cwd %+v, want /tmp", r.Cwd)
	}
	if r.Host.Hostname != "proc-host" {
		t.Errorf("hostname %q", r.Host.Hostname)
	}
	if l := r.Rlimits["nofile"]; l.Max != 512 {
		t.Errorf("RLIMIT_NOFILE %+v, want hard 512", l)
	}
	if l := r.Rlimits["core"]; l.Cur != 0 || l.Max != 0 {
		t.Errorf("RLIMIT_CORE %+v, want 0/0 by default", l)
	}
	// The ambient set is always empty, so a non-root user loses permitted and effective
	// capabilities at execve (kernel rules, as under runc); the bounding set keeps the request.
	if c := r.Caps; c.Eff != 0 || c.Prm != 0 || c.Inh != 0 || c.Amb != 0 || c.Bnd != bits(capChown) {
		t.Errorf("caps %+v, want bounding CHOWN only and nothing else for uid 1000", c)
	}
}
