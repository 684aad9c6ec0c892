package sandbox

import (
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func floorSpec() *specs.Spec {
	return &specs.Spec{
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{Args: []string{"/bin/true"}, Cwd: "/"},
		Linux:   &specs.Linux{Namespaces: privateNamespaces()},
	}
}

// privateNamespaces asks for new pid, network, ipc and uts namespaces: without them a spec asks
// for the host's.
func privateNamespaces() []specs.LinuxNamespace {
	return []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace}}
}

func floorRuntime(t *testing.T) *Runtime {
	r, err := New(Options{Root: t.TempDir(), AllowNoMAC: true})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func hasRaise(raises []Raise, field, to string) bool {
	for _, r := range raises {
		if r.Field == field && strings.Contains(r.To, to) {
			return true
		}
	}
	return false
}

func TestFloorRaisesEmptySpec(t *testing.T) {
	r := floorRuntime(t)
	in := floorSpec()
	eff, raises, err := floored(r, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Linux.Namespaces) != 4 || in.Root.Readonly {
		t.Fatal("Floor modified its input")
	}
	ns := map[specs.LinuxNamespaceType]bool{}
	for _, n := range eff.Linux.Namespaces {
		ns[n.Type] = true
	}
	for _, want := range requiredNamespaces {
		if !ns[want] || !hostIfAbsent[want] && !hasRaise(raises, "linux.namespaces", string(want)) {
			t.Errorf("namespace %s not forced/raised", want)
		}
	}
	if !eff.Root.Readonly || !eff.Process.NoNewPrivileges {
		t.Error("root not read-only or no_new_privs unset")
	}
	c := eff.Process.Capabilities
	if len(c.Bounding)+len(c.Effective)+len(c.Permitted)+len(c.Inheritable)+len(c.Ambient) != 0 {
		t.Errorf("nothing requested but capabilities granted: %+v", c)
	}
	dests := map[string]specs.Mount{}
	for _, m := range eff.Mounts {
		dests[m.Destination] = m
	}
	for _, d := range []string{"/proc", "/dev", "/dev/pts", "/dev/shm", "/sys", "/tmp", "/run", "/var/tmp"} {
		if _, ok := dests[d]; !ok {
			t.Errorf("default mount %s missing", d)
		}
	}
	for _, d := range []string{"/tmp", "/run", "/var/tmp"} {
		for _, o := range []string{"nosuid", "nodev", "noexec"} {
			if !hasOpt(dests[d].Options, o) {
				t.Errorf("%s lacks %s", d, o)
			}
		}
		if !hasOptPrefix(dests[d].Options, "size=") {
			t.Errorf("%s has no size limit", d)
		}
	}
	if !hasOpt(dests["/sys"].Options, "ro") {
		t.Error("/sys not read-only")
	}
	for _, p := range []string{"/proc/kcore", "/proc/keys", "/sys/firmware", "/proc/sched_debug"} {
		if !contains(eff.Linux.MaskedPaths, p) {
			t.Errorf("%s not masked", p)
		}
	}
	if !contains(eff.Linux.ReadonlyPaths, "/proc/sys") {
		t.Error("/proc/sys not read-only")
	}
	rl := map[string]specs.POSIXRlimit{}
	for _, l := range eff.Process.Rlimits {
		rl[l.Type] = l
	}
	if l, ok := rl["RLIMIT_CORE"]; !ok || l.Hard != 0 {
		t.Error("core dumps not disabled")
	}
	if l, ok := rl["RLIMIT_NOFILE"]; !ok || l.Hard > maxNofile {
		t.Error("nofile not finite")
	}
	if _, ok := rl["RLIMIT_NPROC"]; !ok {
		t.Error("nproc unset")
	}
	if !hasRaise(raises, "linux.seccomp", "default") {
		t.Error("missing seccomp raise")
	}
	if eff.Linux.Resources == nil || eff.Linux.Resources.Pids == nil {
		t.Error("cgroup defaults not applied")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestFloorRefusals(t *testing.T) {
	r := floorRuntime(t)
	cases := map[string]func(s *specs.Spec){
		"host netns": func(s *specs.Spec) {
			s.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: "/proc/1/ns/net"}}
		},
		"host userns": func(s *specs.Spec) {
			s.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.UserNamespace, Path: "/proc/1/ns/user"}}
		},
		"SYS_ADMIN": func(s *specs.Spec) {
			s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: []string{"CAP_SYS_ADMIN"}}
		},
		"DAC_READ_SEARCH": func(s *specs.Spec) {
			s.Process.Capabilities = &specs.LinuxCapabilities{Effective: []string{"CAP_DAC_READ_SEARCH"}}
		},
		"unknown cap":   func(s *specs.Spec) { s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: []string{"CAP_NOPE"}} },
		"dotdot dest":   func(s *specs.Spec) { s.Mounts = []specs.Mount{{Destination: "/../../etc", Type: "tmpfs"}} },
		"relative dest": func(s *specs.Spec) { s.Mounts = []specs.Mount{{Destination: "etc", Type: "tmpfs"}} },
		"root dest":     func(s *specs.Spec) { s.Mounts = []specs.Mount{{Destination: "/", Type: "tmpfs"}} },
		"overlay mount": func(s *specs.Spec) { s.Mounts = []specs.Mount{{Destination: "/x", Type: "overlay"}} },
		"host sysctl":   func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"kernel.panic": "1"} },
		// Issue 8 §3: a second kernel filesystem instance would sit outside the masks.
		"proc elsewhere":    func(s *specs.Spec) { s.Mounts = []specs.Mount{{Destination: "/mnt", Type: "proc"}} },
		"sysfs elsewhere":   func(s *specs.Spec) { s.Mounts = []specs.Mount{{Destination: "/mnt/", Type: "sysfs"}} },
		"cgroup elsewhere":  func(s *specs.Spec) { s.Mounts = []specs.Mount{{Destination: "/mnt", Type: "cgroup"}} },
		"cgroup2 elsewhere": func(s *specs.Spec) { s.Mounts = []specs.Mount{{Destination: "/proc/x", Type: "cgroup2"}} },
		"no process":        func(s *specs.Spec) { s.Process = nil },
		"no args":           func(s *specs.Spec) { s.Process.Args = nil },
		"no root":           func(s *specs.Spec) { s.Root = nil },
		"masked dotdot":     func(s *specs.Spec) { s.Linux.MaskedPaths = []string{"/proc/../etc"} },
	}
	for name, mutate := range cases {
		s := floorSpec()
		mutate(s)
		if _, _, err := floored(r, s); !errors.Is(err, ErrFloor) {
			t.Errorf("%s: err %v, want ErrFloor", name, err)
		}
	}
	s := floorSpec()
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: []string{"CAP_SYS_ADMIN", "CAP_SYS_PTRACE"}}
	_, _, err := floored(r, s)
	if err == nil || !strings.Contains(err.Error(), "SYS_ADMIN") || !strings.Contains(err.Error(), "SYS_PTRACE") {
		t.Errorf("refusal does not name every forbidden capability: %v", err)
	}
}

func TestFloorCapabilityClasses(t *testing.T) {
	r := floorRuntime(t)
	s := floorSpec()
	s.Process.Capabilities = &specs.LinuxCapabilities{
		Bounding:    []string{"CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"},
		Effective:   []string{"CAP_CHOWN"},
		Inheritable: []string{"CAP_CHOWN"},
		Ambient:     []string{"CAP_CHOWN"},
	}
	eff, raises, err := floored(r, s)
	if err != nil {
		t.Fatal(err)
	}
	c := eff.Process.Capabilities
	if strings.Join(c.Bounding, ",") != "CAP_CHOWN,CAP_NET_BIND_SERVICE" || strings.Join(c.Permitted, ",") != strings.Join(c.Bounding, ",") || strings.Join(c.Effective, ",") != strings.Join(c.Bounding, ",") {
		t.Errorf("kept caps %+v", c)
	}
	if len(c.Inheritable) != 0 || len(c.Ambient) != 0 {
		t.Errorf("inheritable/ambient not emptied: %+v", c)
	}
	for _, f := range []string{"process.capabilities", "process.capabilities.inheritable", "process.capabilities.ambient"} {
		if !hasRaise(raises, f, "") {
			t.Errorf("no raise for %s", f)
		}
	}
}

func TestFloorMountOptions(t *testing.T) {
	r := floorRuntime(t)
	s := floorSpec()
	s.Mounts = []specs.Mount{
		{Destination: "/data", Type: "bind", Source: "/srv", Options: []string{"rbind", "rw"}},
		{Destination: "/vol", Type: "bind", Source: "/srv/v", Options: []string{"bind", "exec", "suid", "dev"}},
		{Destination: "/both", Type: "bind", Source: "/srv/b", Options: []string{"bind", "noexec", "exec"}},
		{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"rw", "noexec", "exec", "suid", "dev"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"rw"}},
		{Destination: "/a/b/c", Type: "tmpfs"},
	}
	s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1 << 40, Hard: 1 << 40}, {Type: "RLIMIT_CORE", Soft: 100, Hard: 100}}
	eff, raises, err := floored(r, s)
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, m := range eff.Mounts {
		pos[m.Destination] = i
	}
	for i, m := range eff.Mounts {
		for p := path.Dir(m.Destination); p != "/"; p = path.Dir(p) {
			if j, ok := pos[p]; ok && j > i {
				t.Errorf("mount %s comes before its parent %s", m.Destination, p)
			}
		}
		switch m.Destination {
		case "/data":
			// Asked writable: policy decides the source; the floor makes it inert and idmapped.
			if hasOpt(m.Options, "rw") || !hasOpt(m.Options, "nosuid") || !hasOpt(m.Options, "nodev") ||
				!hasOpt(m.Options, "noexec") || !hasOpt(m.Options, "idmap") {
				t.Errorf("writable bind not made noexec, nosuid, nodev and idmapped: %v", m.Options)
			}
		case "/vol", "/both":
			// exec is policy's to grant (exec_volumes); suid and dev never. noexec with exec:
			// noexec wins.
			fl, _ := parseOptions(m.Options)
			want := uintptr(unix.MS_NOSUID | unix.MS_NODEV)
			if m.Destination == "/both" {
				want |= unix.MS_NOEXEC
			}
			if fl&(unix.MS_NOEXEC|unix.MS_NOSUID|unix.MS_NODEV) != want || !hasOpt(m.Options, "idmap") {
				t.Errorf("%s: options %v", m.Destination, m.Options)
			}
		case "/tmp":
			if !hasOpt(m.Options, "noexec") || !hasOptPrefix(m.Options, "size=") {
				t.Errorf("tmpfs options %v", m.Options)
			}
			// parseOptions applies options in order: a counter-option would undo the floor's.
			if fl, _ := parseOptions(m.Options); fl&(unix.MS_NOEXEC|unix.MS_NOSUID|unix.MS_NODEV) != unix.MS_NOEXEC|unix.MS_NOSUID|unix.MS_NODEV {
				t.Errorf("tmpfs options %v", m.Options)
			}
		case "/sys/fs/cgroup":
			if m.Type != "cgroup2" || !hasOpt(m.Options, "ro") {
				t.Errorf("cgroup mount %s %v", m.Type, m.Options)
			}
		}
	}
	for _, l := range eff.Process.Rlimits {
		if l.Type == "RLIMIT_NOFILE" && l.Hard > maxNofile {
			t.Errorf("nofile hard %d", l.Hard)
		}
		if l.Type == "RLIMIT_CORE" && l.Hard != 0 {
			t.Errorf("core %d", l.Hard)
		}
	}
	if !hasRaise(raises, "process.rlimits.RLIMIT_NOFILE", "") || !hasRaise(raises, "mounts[/sys/fs/cgroup]", "cgroup2") {
		t.Errorf("raises %+v", raises)
	}
}

func TestStateTransitions(t *testing.T) {
	legal := [][2]Status{
		{StatusCreating, StatusCreated}, {StatusCreated, StatusRunning}, {StatusRunning, StatusPaused},
		{StatusPaused, StatusRunning}, {StatusRunning, StatusStopped}, {StatusCreated, StatusStopped},
	}
	for _, p := range legal {
		if err := transition(p[0], p[1]); err != nil {
			t.Errorf("%s → %s refused: %v", p[0], p[1], err)
		}
	}
	illegal := [][2]Status{
		{StatusCreating, StatusRunning}, {StatusCreated, StatusPaused}, {StatusStopped, StatusRunning},
		{StatusPaused, StatusCreated}, {StatusStopped, StatusCreated},
	}
	for _, p := range illegal {
		if err := transition(p[0], p[1]); !errors.Is(err, ErrInvalidState) {
			t.Errorf("%s → %s: %v, want ErrInvalidState", p[0], p[1], err)
		}
	}
}

func TestCheckID(t *testing.T) {
	for _, id := range []string{"", "../x", "a/b", ".hidden", strings.Repeat("a", 200)} {
		if checkID(id) == nil {
			t.Errorf("id %q accepted", id)
		}
	}
	if err := checkID("web-1.a_b"); err != nil {
		t.Error(err)
	}
}

// TestFloorKeepsSpecMountOrder: the spec's mounts stay in its order (the OCI contract); defaults
// go after their parent or first.
func TestFloorKeepsSpecMountOrder(t *testing.T) {
	r := floorRuntime(t)
	s := floorSpec()
	s.Mounts = []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc"},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs"},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs"},
		{Destination: "/data/x", Type: "tmpfs", Source: "tmpfs"},
	}
	eff, _, err := floored(r, s)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range eff.Mounts {
		got = append(got, m.Destination)
	}
	want := []string{"/tmp", "/run", "/var/tmp", "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup", "/data/x"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("order\n got %v\nwant %v", got, want)
	}
}

// Docker and CRI bind per-container hosts/hostname/resolv.conf from host directories; the floor
// replaces them with generated files so no host file is bound there.
func TestFloorReplacesBoundEtcFilesWithGenerated(t *testing.T) {
	r := floorRuntime(t)
	s := floorSpec()
	for _, f := range []string{"hosts", "hostname", "resolv.conf"} {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/etc/" + f, Type: "bind",
			Source: "/var/lib/docker/containers/abc/" + f, Options: []string{"rbind", "rprivate"}})
	}
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/etc/passwd", Type: "bind", Source: "/srv/passwd", Options: []string{"rbind"}})
	eff, raises, err := floored(r, s)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range eff.Mounts {
		if strings.HasPrefix(m.Source, "/var/lib/docker/") {
			t.Errorf("host file still bound: %+v", m)
		}
	}
	for _, f := range []string{"hosts", "hostname", "resolv.conf"} {
		if !hasRaise(raises, "mounts[/etc/"+f+"]", "generated file") {
			t.Errorf("no raise for /etc/%s: %+v", f, raises)
		}
	}
	if !hasRaise(raises, "mounts[/etc/passwd].options", "+idmap") {
		t.Errorf("other binds keep the floor's handling: %+v", raises)
	}
}

// floored is Floor as these tests read it: the effective spec and raises, or the refusal as an
// error.
func floored(r *Runtime, s *specs.Spec) (*specs.Spec, []Raise, error) {
	res, err := r.Floor(s)
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		return nil, nil, err
	}
	return res.Spec, res.Raises, nil
}

// TestFloorRlimitsRecordWhatIsApplied: a limit above the runtime's own hard limit (which the
// container cannot exceed) is clamped to it in the effective spec and its raise, so the recorded
// value is the one the child applies; the child no longer clamps silently.
func TestFloorRlimitsRecordWhatIsApplied(t *testing.T) {
	s := floorSpec()
	s.Process.Rlimits = []specs.POSIXRlimit{
		{Type: "RLIMIT_NOFILE", Soft: 1 << 20, Hard: 1 << 20},
		{Type: "RLIMIT_MEMLOCK", Soft: 1 << 30, Hard: 1 << 30},
	}
	own := map[int]uint64{}
	for name, hard := range map[string]uint64{"RLIMIT_NOFILE": 20000, "RLIMIT_MEMLOCK": 8 << 20, "RLIMIT_CORE": 0, "RLIMIT_NPROC": 1 << 30} {
		n, _ := rlimitNumber(name)
		own[n] = hard
	}
	f := &floor{spec: s, hardLimit: func(n int) (uint64, error) { return own[n], nil }}
	if err := f.rlimits(); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, rl := range s.Process.Rlimits {
		got[rl.Type] = fmt.Sprintf("%d:%d", rl.Soft, rl.Hard)
	}
	want := map[string]string{"RLIMIT_NOFILE": "20000:20000", "RLIMIT_MEMLOCK": "8388608:8388608", "RLIMIT_CORE": "0:0", "RLIMIT_NPROC": "4096:4096"}
	if !maps.Equal(got, want) {
		t.Errorf("effective rlimits %v, want %v", got, want)
	}
	for typ, v := range want {
		if typ != "RLIMIT_NPROC" && !hasRaise(f.raises, "process.rlimits."+typ, v) {
			t.Errorf("%s: no raise to %s in %+v", typ, v, f.raises)
		}
	}
	// The default (1024:65536) is clamped the same way before it is recorded.
	s = floorSpec()
	f = &floor{spec: s, hardLimit: func(int) (uint64, error) { return 20000, nil }}
	if err := f.rlimits(); err != nil {
		t.Fatal(err)
	}
	for _, r := range f.raises {
		if r.Field == "process.rlimits.RLIMIT_NOFILE" && r.To != "1024:20000" {
			t.Errorf("default nofile recorded as %q, want 1024:20000", r.To)
		}
	}
	s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Soft: 1, Hard: 1})
	if err := (&floor{spec: s, hardLimit: ownHardLimit}).rlimits(); !errors.Is(err, ErrFloor) {
		t.Errorf("a duplicate rlimit: %v, want a floor refusal", err)
	}
}

// TestFloorRefusesAbsentNamespaces: a spec without a pid, network, ipc or uts namespace asks for
// the host's (a Kubernetes hostNetwork pod's spec has no network namespace); the floor refuses it
// with the reason instead of silently giving a new one (issue 15). A missing user, mount or
// cgroup namespace is the floor's own to add.
func TestFloorRefusesAbsentNamespaces(t *testing.T) {
	r := floorRuntime(t)
	for _, drop := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace} {
		s := floorSpec()
		s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == drop })
		res, err := r.Floor(s)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Refusals) != 1 || res.Refusals[0].Field != RefusedNamespace || res.Refusals[0].Name != string(drop) ||
			res.Refusals[0].Value != "" || !strings.Contains(res.Refusals[0].Reason, "host's") {
			t.Errorf("without %s: refusals %+v", drop, res.Refusals)
		}
		if err := res.Err(); !errors.Is(err, ErrFloor) || !strings.Contains(err.Error(), string(drop)) {
			t.Errorf("without %s: %v", drop, err)
		}
	}
	res, err := r.Floor(floorSpec())
	if err != nil || res.Err() != nil {
		t.Fatalf("with every namespace: %v, %v", err, res.Err())
	}
	for _, t2 := range []specs.LinuxNamespaceType{specs.UserNamespace, specs.MountNamespace, specs.CgroupNamespace} {
		if !hasRaise(res.Raises, "linux.namespaces", string(t2)) {
			t.Errorf("missing %s namespace not raised", t2)
		}
	}
}

// TestFloorWritableRoot: root.readonly false is raised to read-only unless the caller's runtime
// grants a writable root (Options.WritableRoot, the engine's policy grant), and such a root
// cannot be created without the caller's upper layer.
func TestFloorWritableRoot(t *testing.T) {
	in := floorSpec()
	in.Root.Readonly = false
	eff, raises, err := floored(floorRuntime(t), in)
	if err != nil || !eff.Root.Readonly || !hasRaise(raises, "root.readonly", "true") {
		t.Errorf("without the grant: readonly %v, raises %v, %v", eff.Root.Readonly, raises, err)
	}
	r, err := New(Options{Root: t.TempDir(), AllowNoMAC: true, WritableRoot: true})
	if err != nil {
		t.Fatal(err)
	}
	eff, raises, err = floored(r, in)
	if err != nil || eff.Root.Readonly || hasRaise(raises, "root.readonly", "true") {
		t.Errorf("with the grant: readonly %v, raises %v, %v", eff.Root.Readonly, raises, err)
	}
	if _, err := openRoot(eff, t.TempDir(), []string{t.TempDir()}, -1); !errors.Is(err, ErrFloor) {
		t.Errorf("a writable root without an upper: %v", err)
	}
}
