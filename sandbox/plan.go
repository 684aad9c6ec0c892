package sandbox

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/sandbox/internal/caps"
	"bulwark.dev/bulwark/sandbox/internal/cgroups"
	"bulwark.dev/bulwark/sandbox/internal/landlock"
	"bulwark.dev/bulwark/sandbox/internal/mac"
)

// initConfig is the plan the parent sends the child in the config message: everything the child
// needs, already decided. The child makes no policy choices of its own.
type initConfig struct {
	ID            string
	Hostname      string
	Domainname    string
	Mounts        []mountPlan
	MaskedPaths   []string
	ReadonlyPaths []string
	Sysctl        map[string]string
	Files         []filePlan
	Cgroups       []cgroupView
	Process       processPlan
	// NetJoined says the container joins an existing network namespace (the pod model).
	NetJoined bool
	// Donated descriptors, by name: indices into the config message's SCM_RIGHTS list, -1 if none.
	RootfsFD int // detached idmapped mount of the rootfs (Create only)
	FifoFD   int // exec fifo opened O_RDWR; init blocks reading it (Create only)
	// WritableRoot leaves the root writable once pivoted (CreateFromLayersWritable).
	WritableRoot bool
}

// mountPlan is one mount in the container. Bind mounts arrive as detached trees made by the parent
// (SrcFD), since the child, an unprivileged host uid, may not even be able to resolve the source.
type mountPlan struct {
	Dest   string
	Type   string
	Source string
	Flags  uintptr
	Data   string
	SrcFD  int
}

// cgroupView is one cgroup hierarchy the container is placed in, mounted read-only (its own
// subtree, through its cgroup namespace) where a "cgroup2" mount asks for the container's cgroups.
type cgroupView struct {
	// Name is the directory under that mount ("memory", "systemd", "unified"); "" for a pure v2
	// host, whose single hierarchy is mounted at the destination itself.
	Name    string
	Unified bool
	// Options name a v1 hierarchy ("cpu,cpuacct", "name=systemd").
	Options string
}

// cgroupViews lists the hierarchies cg places the container in, as the child mounts them.
func cgroupViews(cg cgroups.Manager) []cgroupView {
	var out []cgroupView
	for _, h := range cg.Hierarchies() {
		out = append(out, cgroupView{Name: h.Name, Unified: h.Unified, Options: h.Options})
	}
	return out
}

// filePlan is a generated file (/etc/hosts, /etc/hostname, /etc/resolv.conf) mounted read-only
// from the runtime's shared copy (donateGenerated) or from the child's staging tmpfs; host files
// are never bind-mounted for these.
type filePlan struct {
	Dest    string
	Content string
	// SrcFD is the donated read-only clone of the runtime's shared copy (an index into the
	// config message's descriptors, Content then left out), or -1: the child writes Content
	// into its staging tmpfs.
	SrcFD int
}

// processPlan is the confinement and identity of the process the child finally executes.
type processPlan struct {
	Args        []string
	Env         []string
	Cwd         string
	UID         uint32
	GID         uint32
	Groups      []uint32
	Caps        uint64
	Rlimits     []rlimitPlan
	Terminal    bool
	Rows        uint16
	Cols        uint16
	OOMScoreAdj *int
	MAC         mac.Container
	Landlock    landlock.Rules
	Seccomp     []seccompBlob
}

type rlimitPlan struct {
	Resource int
	Soft     uint64
	Hard     uint64
}

var mountFlags = map[string]struct {
	clear bool
	flag  uintptr
}{
	"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY},
	"nosuid": {false, unix.MS_NOSUID}, "suid": {true, unix.MS_NOSUID},
	"nodev": {false, unix.MS_NODEV}, "dev": {true, unix.MS_NODEV},
	"noexec": {false, unix.MS_NOEXEC}, "exec": {true, unix.MS_NOEXEC},
	"sync": {false, unix.MS_SYNCHRONOUS}, "async": {true, unix.MS_SYNCHRONOUS},
	"dirsync": {false, unix.MS_DIRSYNC}, "noatime": {false, unix.MS_NOATIME},
	"atime": {true, unix.MS_NOATIME}, "nodiratime": {false, unix.MS_NODIRATIME},
	"diratime": {true, unix.MS_NODIRATIME}, "relatime": {false, unix.MS_RELATIME},
	"norelatime": {true, unix.MS_RELATIME}, "strictatime": {false, unix.MS_STRICTATIME},
	"nostrictatime": {true, unix.MS_STRICTATIME}, "nosymfollow": {false, unix.MS_NOSYMFOLLOW},
	"bind": {false, unix.MS_BIND}, "rbind": {false, unix.MS_BIND | unix.MS_REC},
}

// ignoredOptions are propagation and runtime-level options: every container mount is private.
var ignoredOptions = map[string]bool{
	"private": true, "rprivate": true, "shared": true, "rshared": true, "slave": true,
	"rslave": true, "unbindable": true, "runbindable": true, "defaults": true,
}

// parseOptions splits mount options into flags and filesystem data.
func parseOptions(opts []string) (uintptr, string) {
	var flags uintptr
	var data []string
	for _, o := range opts {
		if f, ok := mountFlags[o]; ok {
			if f.clear {
				flags &^= f.flag
			} else {
				flags |= f.flag
			}
			continue
		}
		if ignoredOptions[o] {
			continue
		}
		data = append(data, o)
	}
	return flags, strings.Join(data, ",")
}

// processPlanFor turns an effective (floored) process spec into the child's plan.
func processPlanFor(p *specs.Process, mounts []specs.Mount, sc []seccompBlob, writableRoot bool) (processPlan, error) {
	set, err := caps.Parse(p.Capabilities.Bounding)
	if err != nil {
		return processPlan{}, fmt.Errorf("capabilities: %w", err)
	}
	pp := processPlan{
		Args: p.Args, Env: p.Env, Cwd: p.Cwd,
		UID: p.User.UID, GID: p.User.GID, Groups: p.User.AdditionalGids,
		Caps: uint64(set), Terminal: p.Terminal, OOMScoreAdj: p.OOMScoreAdj, Seccomp: sc,
	}
	if p.ConsoleSize != nil {
		pp.Rows, pp.Cols = uint16(p.ConsoleSize.Height), uint16(p.ConsoleSize.Width)
	}
	for _, rl := range p.Rlimits {
		n, ok := rlimitNumber(rl.Type)
		if !ok {
			return processPlan{}, fmt.Errorf("unknown rlimit %q", rl.Type)
		}
		pp.Rlimits = append(pp.Rlimits, rlimitPlan{Resource: n, Soft: rl.Soft, Hard: rl.Hard})
	}
	pp.Landlock = landlock.Rules{Root: "/", WritableRoot: writableRoot}
	for _, m := range mounts {
		// Writable: tmpfs mounts, and binds the floor let through writable (idmapped, noexec
		// unless the bind asked for exec, which policy decides: floorOptions).
		if (m.Type == "tmpfs" && m.Destination != "/dev" || isBind(m)) && !hasOpt(m.Options, "ro") {
			if isBind(m) && hasOpt(m.Options, "exec") && !hasOpt(m.Options, "noexec") {
				pp.Landlock.WritableExec = append(pp.Landlock.WritableExec, m.Destination)
			} else {
				pp.Landlock.Writable = append(pp.Landlock.Writable, m.Destination)
			}
		}
	}
	return pp, nil
}

// isGeneratedFile reports whether dest is one of the files generatedFiles writes.
func isGeneratedFile(dest string) bool {
	for _, g := range generatedFiles("", nil) {
		if g.Dest == dest {
			return true
		}
	}
	return false
}

// AnnotationNameservers lists the resolvers (comma-separated IP addresses) the container's
// generated /etc/resolv.conf names: whoever attaches its network namespace to a network that
// resolves names sets it (the engine: the network's resolver on its gateway). Without it the
// file says that no resolver is reachable.
const AnnotationNameservers = "dev.bulwark.dns.nameservers"

// nameservers reads AnnotationNameservers; anything but addresses is refused.
func nameservers(annotations map[string]string) ([]netip.Addr, error) {
	v := annotations[AnnotationNameservers]
	if v == "" {
		return nil, nil
	}
	var out []netip.Addr
	for _, s := range strings.Split(v, ",") {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return nil, floorErr("annotation %s: %q is not an IP address", AnnotationNameservers, s)
		}
		out = append(out, a)
	}
	return out, nil
}

// unbound are the generated files no mount covers (a pod container's CRI binds, see the floor).
func unbound(files []filePlan, mounts []specs.Mount) []filePlan {
	var out []filePlan
	for _, f := range files {
		if !slices.ContainsFunc(mounts, func(m specs.Mount) bool { return m.Destination == f.Dest }) {
			out = append(out, f)
		}
	}
	return out
}

// generatedFiles are the /etc files every container gets, never copies of the host's.
func generatedFiles(hostname string, dns []netip.Addr) []filePlan {
	if hostname == "" {
		hostname = "localhost"
	}
	resolv := "# bulwark: the network namespace is empty (loopback only); no resolver is reachable.\n"
	if len(dns) > 0 {
		resolv = "# bulwark: the resolver of the container's network (names of its containers only).\n"
		for _, a := range dns {
			resolv += "nameserver " + a.String() + "\n"
		}
		resolv += "options ndots:0\n"
	}
	return []filePlan{
		{Dest: "/etc/hostname", Content: hostname + "\n", SrcFD: -1},
		{Dest: "/etc/hosts", Content: "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t" + hostname + "\n", SrcFD: -1},
		{Dest: "/etc/resolv.conf", Content: resolv, SrcFD: -1},
	}
}
