package sandbox

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/errdefs"
	"bulwark.dev/bulwark/sandbox/internal/caps"
	"bulwark.dev/bulwark/sandbox/internal/cgroups"
	"bulwark.dev/bulwark/sandbox/internal/mac"
)

// The floor: what every container gets whatever its spec says. Floor raises a spec that asks for
// less and records each raise; it refuses (an error) what it cannot raise without changing the
// meaning of the request in a dangerous way (joining a host namespace, a forbidden capability,
// an unknown mount type, a hostile mount destination).

// requiredNamespaces are created fresh for every container; joining an existing one is refused.
var requiredNamespaces = []specs.LinuxNamespaceType{
	specs.UserNamespace, specs.MountNamespace, specs.PIDNamespace, specs.IPCNamespace,
	specs.UTSNamespace, specs.CgroupNamespace, specs.NetworkNamespace,
}

// hostIfAbsent are the namespaces a spec that lacks them asks to share with the host (the OCI
// meaning) in a way the caller relies on: a Kubernetes hostNetwork pod's spec has no network
// namespace. They are refused, never silently replaced by a new one (a hostNetwork pod moved into
// an empty namespace). A missing user, mount or cgroup namespace is raised: the floor's own.
var hostIfAbsent = map[specs.LinuxNamespaceType]bool{
	specs.PIDNamespace: true, specs.IPCNamespace: true, specs.UTSNamespace: true, specs.NetworkNamespace: true,
}

// defaultMaskedPaths hide kernel interfaces that leak host state or reach host-wide knobs
// (runc's and Docker's default lists).
var defaultMaskedPaths = []string{
	"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
	"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
	"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
}

// defaultReadonlyPaths are host-wide /proc interfaces that must not be written.
var defaultReadonlyPaths = []string{
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
}

// tmpfsSize bounds every tmpfs that does not set a size, so a container cannot fill host memory.
const tmpfsSize = "size=65536k"

// kernelFSHome is the one destination each kernel filesystem may be mounted at. The masked and
// read-only paths are container paths under /proc and /sys, so a second instance elsewhere
// (proc at /mnt) would show /mnt/interrupts, /mnt/sys/kernel and /sys/firmware unmasked.
var kernelFSHome = map[string]string{
	"proc": "/proc", "sysfs": "/sys", "cgroup": "/sys/fs/cgroup", "cgroup2": "/sys/fs/cgroup",
}

// defaultMounts are added when the spec has no mount at their destination.
var defaultMounts = []specs.Mount{
	{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
	{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "noexec", "strictatime", "mode=755", tmpfsSize}},
	{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
	{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", tmpfsSize}},
	{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
	{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
	// The container's own cgroups, read-only (see mountCgroups): workloads read their limits.
	{Destination: "/sys/fs/cgroup", Type: "cgroup2", Source: "cgroup2", Options: []string{"ro", "nosuid", "nodev", "noexec"}},
	{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "noexec", "mode=1777", tmpfsSize}},
	{Destination: "/run", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "noexec", "mode=755", tmpfsSize}},
	{Destination: "/var/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "noexec", "mode=1777", tmpfsSize}},
}

// Default rlimits: no core dumps (they can leak secrets to the host's core pattern), finite files
// and processes.
const (
	defaultNofileSoft = 1024
	defaultNofileHard = 65536
	maxNofile         = 1 << 20
	defaultNproc      = 4096
	maxNproc          = 1 << 22
)

// floorRlimits are set when the spec does not set them (soft, hard) and capped (max) when it does.
var floorRlimits = []struct {
	typ             string
	soft, hard, max uint64
}{
	{"RLIMIT_CORE", 0, 0, 0},
	{"RLIMIT_NOFILE", defaultNofileSoft, defaultNofileHard, maxNofile},
	{"RLIMIT_NPROC", defaultNproc, defaultNproc, maxNproc},
}

// ErrFloor wraps every refusal by the floor.
var ErrFloor = errdefs.New(errdefs.ErrRefusedByFloor, "refused by the sandbox floor")

func floorErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrFloor, fmt.Sprintf(format, a...))
}

// Floor returns everything the floor will enforce on spec (which is not modified): the effective
// spec, the raises, the refusals, the seccomp programs and the MAC layers. It is a dry run: Create
// applies exactly this, and refuses a spec with any refusal (FloorResult.Err). An error means the
// spec cannot be floored at all (malformed, a hostile mount destination, an unknown mount type, a
// host without any MAC layer).
//
// Floor refuses every namespace path: a join is decided only on namespaces resolved once into
// descriptors (FloorResolved).
func (r *Runtime) Floor(spec *specs.Spec) (*FloorResult, error) { return r.FloorResolved(spec, nil) }

// FloorResolved is Floor for a spec whose bind sources and namespace paths srcs holds
// (ResolveBinds): a namespace path is identified by its descriptor, and joined where the pod
// model allows (FloorResult.Joins); srcs keeps the decision for Create.
func (r *Runtime) FloorResolved(spec *specs.Spec, srcs *BindSources) (*FloorResult, error) {
	if spec == nil {
		return nil, floorErr("no spec")
	}
	eff, err := copySpec(spec)
	if err != nil {
		return nil, err
	}
	// The floor raises about 40 things of a runc-style spec: room for them at once, not a slice
	// regrown seven times (each a fresh allocation on a one-shot runtime's policy step).
	f := &floor{spec: eff, layers: hostLayers(), hardLimit: ownHardLimit, rt: r, srcs: srcs, joined: &joined{}, writableRoot: r.opts.WritableRoot,
		raises: make([]Raise, 0, 48)}
	if eff.Process == nil {
		return nil, floorErr("spec has no process")
	}
	if len(eff.Process.Args) == 0 {
		return nil, floorErr("process.args is empty")
	}
	if eff.Root == nil || eff.Root.Path == "" {
		return nil, floorErr("spec has no root.path")
	}
	if eff.Linux == nil {
		eff.Linux = &specs.Linux{}
	}
	steps := []func() error{
		f.namespaces, f.idMappings, f.root, f.mounts, f.paths, f.devices, f.sysctls,
		f.process, f.capabilities, f.rlimits, f.resources, f.cgroupsPath, f.hooks, f.seccomp, f.macLabels,
		f.network,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	if err := r.checkMAC(); err != nil {
		return nil, err
	}
	if srcs != nil {
		srcs.setJoined(f.joined)
	}
	return &FloorResult{
		Spec: eff, Raises: f.raises, Refusals: f.refusals, Joins: f.joined.list,
		Seccomp: seccompStack(eff.Linux.Seccomp), MAC: macLayers(f.layers), Network: networkFloor(),
		rt: r, binds: srcs, joined: f.joined,
	}, nil
}

type floor struct {
	spec     *specs.Spec
	raises   []Raise
	refusals []Refusal
	// layers are the host's MAC layers (hostLayers; a test sets others).
	layers mac.Layers
	// hardLimit is the runtime's own hard limit for an rlimit (ownHardLimit; a test sets others).
	hardLimit func(resource int) (uint64, error)
	// rt identifies namespaces to join in srcs (nil: every join is refused); joined collects
	// what the floor allows.
	rt     *Runtime
	srcs   *BindSources
	joined *joined
	// writableRoot is Options.WritableRoot: root.readonly false is kept.
	writableRoot bool
}

// ownHardLimit returns the calling process's hard limit for resource. The container inherits the
// runtime's limits and cannot raise a hard limit above them (that needs CAP_SYS_RESOURCE in the
// host's user namespace), so it is the most the floor can grant.
func ownHardLimit(resource int) (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(resource, &rl); err != nil {
		return 0, fmt.Errorf("getrlimit %d: %w", resource, err)
	}
	return rl.Max, nil
}

// refuse records something asked that the floor never grants; the effective spec goes on without it.
func (f *floor) refuse(field, name, value, reason string) {
	f.refusals = append(f.refusals, Refusal{Field: field, Name: name, Value: value, Reason: reason})
}

func (f *floor) raise(field, from, to string) {
	f.raises = append(f.raises, Raise{Field: field, From: from, To: to})
}

func (f *floor) namespaces() error {
	have := map[specs.LinuxNamespaceType]bool{}
	var out []specs.LinuxNamespace
	for _, ns := range f.spec.Linux.Namespaces {
		if ns.Type == specs.TimeNamespace {
			f.refuse(RefusedNamespace, string(ns.Type), ns.Path, "time namespace is not supported")
			continue
		}
		if have[ns.Type] {
			continue
		}
		have[ns.Type] = true
		if ns.Path != "" {
			if j, ok := f.join(ns); ok {
				out = append(out, specs.LinuxNamespace{Type: ns.Type, Path: j.Path})
				continue
			}
		}
		out = append(out, specs.LinuxNamespace{Type: ns.Type})
	}
	if pod := f.joined.pod; pod != nil && !slices.ContainsFunc(out, func(n specs.LinuxNamespace) bool { return n.Type == specs.UserNamespace && n.Path != "" }) {
		// A pod shares one user namespace and id range: its sandbox's.
		fd, err := openInitNS(pod, "user")
		if err != nil {
			return floorErr("the user namespace of pod sandbox %s: %v", pod.ID, err)
		}
		f.joined.add(specs.UserNamespace, fd, Join{Type: string(specs.UserNamespace), Kind: JoinPod, Pod: pod.ID,
			Path: "/proc/" + strconv.Itoa(pod.Pid) + "/ns/user"})
		out = slices.DeleteFunc(out, func(n specs.LinuxNamespace) bool { return n.Type == specs.UserNamespace })
		out = append(out, specs.LinuxNamespace{Type: specs.UserNamespace, Path: "/proc/" + strconv.Itoa(pod.Pid) + "/ns/user"})
		have[specs.UserNamespace] = true
		f.raise("linux.namespaces", "", "user (pod sandbox "+pod.ID+"'s)")
	}
	if f.joinedType(specs.UTSNamespace) && (f.spec.Hostname != "" || f.spec.Domainname != "") {
		// The names belong to the pod's uts namespace: its sandbox set them.
		f.raise("hostname", f.spec.Hostname+" "+f.spec.Domainname, "the pod's (uts namespace joined)")
		f.spec.Hostname, f.spec.Domainname = "", ""
	}
	for _, t := range requiredNamespaces {
		if have[t] {
			continue
		}
		out = append(out, specs.LinuxNamespace{Type: t})
		if hostIfAbsent[t] {
			// The effective spec goes on with a new one; Create refuses the spec.
			f.refuse(RefusedNamespace, string(t), "", fmt.Sprintf("the spec has no %s namespace, which asks for the host's: "+
				"sharing the host's %s namespace is refused (list a new %s namespace, or join a pod's)", t, t, t))
			continue
		}
		f.raise("linux.namespaces", "", string(t))
	}
	for _, ns := range out {
		known := false
		for _, t := range requiredNamespaces {
			known = known || t == ns.Type
		}
		if !known {
			return floorErr("unknown namespace type %q", ns.Type)
		}
	}
	f.spec.Linux.Namespaces = out
	return nil
}

// idMappings replaces any requested mapping: the runtime allocates a per-tenant range at Create.
func (f *floor) idMappings() error {
	if len(f.spec.Linux.UIDMappings) > 0 || len(f.spec.Linux.GIDMappings) > 0 {
		f.raise("linux.uidMappings", fmt.Sprint(f.spec.Linux.UIDMappings), "per-tenant range allocated at create")
		f.spec.Linux.UIDMappings, f.spec.Linux.GIDMappings = nil, nil
	}
	return nil
}

func (f *floor) root() error {
	if !f.spec.Root.Readonly && !f.writableRoot {
		f.spec.Root.Readonly = true
		f.raise("root.readonly", "false", "true")
	}
	return nil
}

func (f *floor) paths() error {
	f.spec.Linux.MaskedPaths = unionPaths(f, "linux.maskedPaths", f.spec.Linux.MaskedPaths, defaultMaskedPaths)
	f.spec.Linux.ReadonlyPaths = unionPaths(f, "linux.readonlyPaths", f.spec.Linux.ReadonlyPaths, defaultReadonlyPaths)
	for _, p := range append(append([]string(nil), f.spec.Linux.MaskedPaths...), f.spec.Linux.ReadonlyPaths...) {
		if _, err := cleanDest(p); err != nil {
			return err
		}
	}
	return nil
}

func unionPaths(f *floor, field string, have, want []string) []string {
	// A few dozen paths at most: looked up in the list itself rather than a map built for it.
	for _, p := range want {
		if !slices.Contains(have, p) {
			have = append(have, p)
			f.raise(field, "", p)
		}
	}
	return have
}

// devices: the container sees only the minimal /dev set; extra device nodes are dropped.
func (f *floor) devices() error {
	if len(f.spec.Linux.Devices) > 0 {
		var names []string
		for _, d := range f.spec.Linux.Devices {
			if !minimalDevice(d.Path) {
				names = append(names, d.Path)
			}
		}
		if len(names) > 0 {
			f.raise("linux.devices", strings.Join(names, ","), "minimal /dev only")
		}
		f.spec.Linux.Devices = nil
	}
	return nil
}

func (f *floor) process() error {
	p := f.spec.Process
	if !p.NoNewPrivileges {
		p.NoNewPrivileges = true
		f.raise("process.noNewPrivileges", "false", "true")
	}
	if p.OOMScoreAdj != nil && *p.OOMScoreAdj < 0 {
		f.raise("process.oomScoreAdj", strconv.Itoa(*p.OOMScoreAdj), "0")
		z := 0
		p.OOMScoreAdj = &z
	}
	if p.Cwd == "" {
		p.Cwd = "/"
	}
	if !path.IsAbs(p.Cwd) {
		return floorErr("process.cwd %q is not absolute", p.Cwd)
	}
	return nil
}

func (f *floor) capabilities() error {
	p := f.spec.Process
	c := p.Capabilities
	if c == nil {
		p.Capabilities = &specs.LinuxCapabilities{}
		return nil
	}
	var requested caps.Set
	for _, list := range [][]string{c.Bounding, c.Effective, c.Permitted} {
		s, err := caps.Parse(list)
		if err != nil {
			return floorErr("process.capabilities: %v", err)
		}
		requested |= s
	}
	kept, forbidden, dropped := caps.Classify(requested)
	for _, c := range forbidden.Caps() {
		f.refuse(RefusedCapability, c.String(), "", "capability forbidden by the floor: "+c.String()+": "+caps.Reason(c))
	}
	if dropped != 0 {
		f.raise("process.capabilities", dropped.String(), "dropped")
	}
	if len(c.Inheritable) > 0 {
		f.raise("process.capabilities.inheritable", strings.Join(c.Inheritable, ","), "")
	}
	if len(c.Ambient) > 0 {
		f.raise("process.capabilities.ambient", strings.Join(c.Ambient, ","), "")
	}
	names := kept.Names()
	p.Capabilities = &specs.LinuxCapabilities{
		Bounding:  names,
		Effective: append([]string(nil), names...),
		Permitted: append([]string(nil), names...),
	}
	return nil
}

// rlimits sets the floor's limits and clamps every limit to what the container can really get (the
// runtime's own hard limit), so the effective spec and its raises record the values applied: the
// child sets exactly these and fails if it cannot.
func (f *floor) rlimits() error {
	p := f.spec.Process
	have := map[string]int{}
	for i, rl := range p.Rlimits {
		if _, ok := rlimitNumber(rl.Type); !ok {
			return floorErr("unknown rlimit %q", rl.Type)
		}
		if _, dup := have[rl.Type]; dup {
			return floorErr("rlimit %s is given twice", rl.Type)
		}
		have[rl.Type] = i
	}
	ceiling := func(typ string, max uint64) (uint64, error) {
		n, _ := rlimitNumber(typ)
		own, err := f.hardLimit(n)
		if err != nil {
			return 0, fmt.Errorf("%w: %s: %w", ErrFloor, typ, err)
		}
		return min(max, own), nil
	}
	set := func(typ string, soft, hard, max uint64) error {
		max, err := ceiling(typ, max)
		if err != nil {
			return err
		}
		i, ok := have[typ]
		if !ok {
			hard = min(hard, max)
			soft = min(soft, hard)
			p.Rlimits = append(p.Rlimits, specs.POSIXRlimit{Type: typ, Soft: soft, Hard: hard})
			f.raise("process.rlimits."+typ, "unset", softHard(soft, hard))
			return nil
		}
		rl := &p.Rlimits[i]
		if rl.Hard > max || rl.Soft > rl.Hard {
			from := softHard(rl.Soft, rl.Hard)
			rl.Hard = min(rl.Hard, max)
			rl.Soft = min(rl.Soft, rl.Hard)
			f.raise("process.rlimits."+typ, from, softHard(rl.Soft, rl.Hard))
		}
		return nil
	}
	floored := map[string]bool{}
	for _, l := range floorRlimits {
		if err := set(l.typ, l.soft, l.hard, l.max); err != nil {
			return err
		}
		floored[l.typ] = true
	}
	for _, rl := range p.Rlimits {
		if floored[rl.Type] {
			continue
		}
		if err := set(rl.Type, 0, 0, ^uint64(0)); err != nil {
			return err
		}
	}
	return nil
}

// softHard is an rlimit's "soft:hard", as the floor's raises show it.
func softHard(soft, hard uint64) string {
	return strconv.FormatUint(soft, 10) + ":" + strconv.FormatUint(hard, 10)
}

func (f *floor) resources() error {
	res, changes := cgroups.WithDefaults(f.spec.Linux.Resources)
	f.spec.Linux.Resources = res
	for _, c := range changes {
		f.raise(c.Field, c.From, c.To)
	}
	return nil
}

// cgroupsPath: a caller's cgroupfs-style path (containerd "/default/<id>", Docker "/docker/<id>")
// is honoured below the cgroup roots; a systemd "slice:prefix:name" path is not supported (no
// systemd driver) and falls back to bulwark/<id>.
func (f *floor) cgroupsPath() error {
	p := f.spec.Linux.CgroupsPath
	if p == "" {
		return nil
	}
	if strings.Contains(p, ":") {
		f.raise("linux.cgroupsPath", p, "bulwark/<id> (systemd cgroup paths are not supported)")
		f.spec.Linux.CgroupsPath = ""
		return nil
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." || part == "." {
			return floorErr("linux.cgroupsPath %q contains %q", p, part)
		}
	}
	c := path.Clean("/" + p)
	if c == "/" {
		return floorErr("linux.cgroupsPath %q is the cgroup root", p)
	}
	f.spec.Linux.CgroupsPath = c
	return nil
}

// hooks: OCI hooks run on the host as root, outside every layer of the floor; they are not run.
func (f *floor) hooks() error {
	if f.spec.Hooks != nil {
		f.raise("hooks", "present", "not run (host-side code outside the sandbox)")
		f.spec.Hooks = nil
	}
	return nil
}

// seccomp: the default allowlist is always loaded; a spec profile is stacked on top of it, so it
// can only make things stricter.
func (f *floor) seccomp() error {
	if f.spec.Linux.Seccomp == nil {
		f.raise("linux.seccomp", "unconfined", "default profile")
		return nil
	}
	f.raise("linux.seccomp", "spec profile", "default profile + spec profile (stacked)")
	return nil
}
