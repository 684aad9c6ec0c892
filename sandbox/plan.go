package sandbox

import (
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/sandbox/internal/caps"
	"bulwark.dev/bulwark/sandbox/internal/cgroups"
	"bulwark.dev/bulwark/sandbox/internal/landlock"
	"bulwark.dev/bulwark/sandbox/setup"
)

// cgroupViews lists the hierarchies cg places the container in, as the child mounts them.
func cgroupViews(cg cgroups.Manager) []setup.CgroupView {
	var out []setup.CgroupView
	for _, h := range cg.Hierarchies() {
		out = append(out, setup.CgroupView{Name: h.Name, Unified: h.Unified, Options: h.Options})
	}
	return out
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
func processPlanFor(p *specs.Process, mounts []specs.Mount, sc []setup.SeccompBlob, writableRoot bool) (setup.ProcessPlan, error) {
	set, err := caps.Parse(p.Capabilities.Bounding)
	if err != nil {
		return setup.ProcessPlan{}, fmt.Errorf("capabilities: %w", err)
	}
	pp := setup.ProcessPlan{
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
			return setup.ProcessPlan{}, fmt.Errorf("unknown rlimit %q", rl.Type)
		}
		pp.Rlimits = append(pp.Rlimits, setup.RlimitPlan{Resource: n, Soft: rl.Soft, Hard: rl.Hard})
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
func unbound(files []setup.FilePlan, mounts []specs.Mount) []setup.FilePlan {
	var out []setup.FilePlan
	for _, f := range files {
		if !slices.ContainsFunc(mounts, func(m specs.Mount) bool { return m.Destination == f.Dest }) {
			out = append(out, f)
		}
	}
	return out
}

// generatedFiles are the /etc files every container gets, never copies of the host's.
func generatedFiles(hostname string, dns []netip.Addr) []setup.FilePlan {
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
	return []setup.FilePlan{
		{Dest: "/etc/hostname", Content: hostname + "\n", SrcFD: -1},
		{Dest: "/etc/hosts", Content: "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t" + hostname + "\n", SrcFD: -1},
		{Dest: "/etc/resolv.conf", Content: resolv, SrcFD: -1},
	}
}

// setOOMScoreAdj gives the unreaped child pid (a setup child, before it sets itself up) the score
// p asks for, from outside: the child cannot open its own oom_score_adj (see oomScoreAdjIs), and
// finds it already done. The score is kept across the workload's execve.
func setOOMScoreAdj(pid int, p *setup.ProcessPlan) error {
	if p.OOMScoreAdj == nil {
		return nil
	}
	if err := os.WriteFile("/proc/"+strconv.Itoa(pid)+"/oom_score_adj", []byte(strconv.Itoa(*p.OOMScoreAdj)), 0); err != nil {
		return fmt.Errorf("oom_score_adj: %w", err)
	}
	return nil
}
