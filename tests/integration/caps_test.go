package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

// Capability bit numbers (linux/capability.h).
const (
	capChown          = 0
	capKill           = 5
	capNetBindService = 10
	capAuditWrite     = 29
)

func bits(n ...int) uint64 {
	var b uint64
	for _, i := range n {
		b |= 1 << i
	}
	return b
}

// TestCapsGrantableKept: grantable capabilities that are requested are kept in bounding,
// permitted and effective; inheritable and ambient stay empty.
func TestCapsGrantableKept(t *testing.T) {
	e := testenv.NewEnv(t, "tenant-caps")
	r, _ := e.Run(testenv.Spec(probe("caps"), testenv.WithCaps("CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE")))
	want := bits(capChown, capKill, capNetBindService)
	c := r.Caps
	if c.Eff != want || c.Prm != want || c.Bnd != want || c.Inh != 0 || c.Amb != 0 {
		t.Errorf("caps %+v, want eff=prm=bnd=%#x inh=amb=0", c, want)
	}
}

// TestCapsOthersDroppedAndRecorded: runc's default spec asks for AUDIT_WRITE (neither grantable
// nor forbidden): it is dropped, and the drop is a raise in State.
func TestCapsOthersDroppedAndRecorded(t *testing.T) {
	e := testenv.NewEnv(t, "tenant-caps")
	r, c := e.Run(testenv.RuncSpec(probe("caps", "ns", "status")))
	want := bits(capKill, capNetBindService)
	if r.Caps.Eff != want || r.Caps.Bnd != want || r.Caps.Prm != want || r.Caps.Inh != 0 || r.Caps.Amb != 0 {
		t.Errorf("caps %+v, want eff=prm=bnd=%#x (KILL, NET_BIND_SERVICE)", r.Caps, want)
	}
	if r.Caps.Eff&bits(capAuditWrite) != 0 {
		t.Errorf("CAP_AUDIT_WRITE kept")
	}
	found := false
	for _, rs := range c.MustState().Raises {
		if strings.Contains(strings.ToLower(rs.Field), "capabilit") && strings.Contains(rs.From+rs.To, "AUDIT_WRITE") {
			found = true
		}
	}
	if !found {
		t.Errorf("no raise records dropping CAP_AUDIT_WRITE: %+v", c.MustState().Raises)
	}
	// The runc spec has no user namespace: the floor adds one.
	if host := testenv.HostNS(t); r.NS["user"] == host["user"] {
		t.Errorf("runc-style spec without a user namespace ran in the host's")
	}
}

// forbiddenCaps are the capabilities the floor refuses outright (the list).
var forbiddenCaps = []string{"CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_MODULE", "CAP_DAC_READ_SEARCH",
	"CAP_NET_ADMIN", "CAP_SYS_RAWIO", "CAP_BPF", "CAP_PERFMON", "CAP_SYS_BOOT", "CAP_SYS_TIME",
	"CAP_MAC_ADMIN", "CAP_MAC_OVERRIDE", "CAP_SYSLOG"}

// TestCapsForbiddenRefused: Floor refuses every forbidden capability with a reason naming it, and
// Create of such a spec fails and leaves nothing behind (state, cgroups, mounts, id range).
func TestCapsForbiddenRefused(t *testing.T) {
	e := testenv.NewEnv(t, "tenant-caps")
	for _, capName := range forbiddenCaps {
		err := testenv.FloorRefusal(e.RT, testenv.Spec(probe(), testenv.WithCaps("CAP_KILL", capName)))
		if err == nil {
			t.Errorf("Floor accepted %s", capName)
			continue
		}
		if !strings.Contains(err.Error(), strings.TrimPrefix(capName, "CAP_")) {
			t.Errorf("refusal of %s does not name it: %v", capName, err)
		}
	}
	c, err := e.Create(nil, testenv.Spec(probe(), testenv.WithCaps("CAP_SYS_ADMIN")))
	if err == nil {
		testenv.DeleteWithin(c.Container, true)
		t.Fatalf("Create with CAP_SYS_ADMIN succeeded")
	}
	if !strings.Contains(err.Error(), "SYS_ADMIN") {
		t.Errorf("Create error does not name SYS_ADMIN: %v", err)
	}
	ents, _ := os.ReadDir(filepath.Join(e.Root, "containers"))
	if len(ents) != 0 {
		t.Errorf("refused Create left %d entries under containers/", len(ents))
	}
	if leaks := e.Leaks.Find(); len(leaks) != 0 {
		t.Errorf("refused Create left: %v", leaks)
	}
}

// TestHostNamespacesRefused: a spec asking to join any existing namespace (the host's here) is
// refused, for every namespace type, and Create leaves nothing behind.
func TestHostNamespacesRefused(t *testing.T) {
	e := testenv.NewEnv(t, "tenant-ns")
	for typ, file := range map[specs.LinuxNamespaceType]string{
		specs.NetworkNamespace: "net", specs.PIDNamespace: "pid", specs.MountNamespace: "mnt",
		specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts", specs.UserNamespace: "user", specs.CgroupNamespace: "cgroup",
	} {
		spec := testenv.Spec(probe())
		spec.Linux.Namespaces = []specs.LinuxNamespace{{Type: typ, Path: "/proc/1/ns/" + file}}
		if err := testenv.FloorRefusal(e.RT, spec); err == nil {
			t.Errorf("Floor accepted joining the host's %s namespace", typ)
		}
	}
	spec := testenv.Spec(probe())
	spec.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: "/proc/1/ns/net"}}
	if c, err := e.Create(nil, spec); err == nil {
		testenv.DeleteWithin(c.Container, true)
		t.Fatal("Create joined the host's network namespace")
	}
	e.Leaks.AssertNone(t)
}
