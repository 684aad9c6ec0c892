package sandbox

import (
	"path"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The floor's mount rules: each mount's destination, the options its kind must carry (binds
// read-only, or writable but noexec and idmapped to the storage range; kernel filesystems only at
// their home), the generated /etc files in place of bound ones, and the default mounts a spec
// lacks.

// cleanDest refuses relative, root and ".."-carrying destinations outright; the child still
// resolves every destination inside the rootfs (RESOLVE_IN_ROOT) in case of symlinks.
func cleanDest(d string) (string, error) {
	if !path.IsAbs(d) {
		return "", floorErr("mount destination %q is not absolute", d)
	}
	for part := range strings.SplitSeq(d, "/") {
		if part == ".." {
			return "", floorErr("mount destination %q contains \"..\"", d)
		}
	}
	c := path.Clean(d)
	if c == "/" {
		return "", floorErr("mount destination %q would cover the root", d)
	}
	return c, nil
}

func isBind(m specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

func hasOpt(opts []string, o string) bool {
	for _, x := range opts {
		if x == o {
			return true
		}
	}
	return false
}

func hasOptPrefix(opts []string, p string) bool {
	for _, x := range opts {
		if strings.HasPrefix(x, p) {
			return true
		}
	}
	return false
}

func (f *floor) mounts() error {
	seen := map[string]bool{}
	out := make([]specs.Mount, 0, len(f.spec.Mounts)+len(defaultMounts))
	for _, m := range f.spec.Mounts {
		d, err := cleanDest(m.Destination)
		if err != nil {
			return err
		}
		m.Destination = d
		if isBind(m) && isGeneratedFile(d) && !f.joinedType(specs.NetworkNamespace) {
			// Docker and CRI bind their own per-container hosts/hostname/resolv.conf from the host;
			// every container gets generated ones instead (its network namespace is empty anyway),
			// so no host file is bound there and policy never sees such a bind. A pod's container
			// in the pod's network (a joined one) keeps CRI's: they name the cluster's resolver
			// and the pod's addresses, and policy decides on them like any bind.
			f.raise("mounts["+d+"]", "bind "+m.Source, "generated file")
			continue
		}
		if want, ok := kernelFSHome[m.Type]; ok && !isBind(m) && d != want {
			return floorErr("a %s mount at %s is refused: the masked and read-only paths cover only the one at %s", m.Type, d, want)
		}
		if m.Type == "cgroup" || m.Type == "cgroup2" {
			// CVE-2022-0492: a writable cgroup v1 hierarchy exposes release_agent. Only the
			// container's own cgroups, read-only through its cgroup namespace, are ever mounted:
			// "cgroup2" here means that view (mountCgroups), which on a v1 or hybrid host is a
			// read-only tmpfs holding each hierarchy the container is placed in.
			if m.Type != "cgroup2" || !hasOpt(m.Options, "ro") {
				f.raise("mounts["+d+"]", m.Type+" "+strings.Join(m.Options, ","), "cgroup2 ro (own cgroup namespace)")
			}
			m.Type, m.Source = "cgroup2", "cgroup2"
			m.Options = []string{"ro", "nosuid", "nodev", "noexec"}
		}
		if len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0 {
			return floorErr("mount at %s: custom uid/gid mappings are not supported (volumes and writable binds are idmapped to the storage range)", d)
		}
		want, err := floorOptions(m)
		if err != nil {
			return err
		}
		for _, o := range want {
			if !hasOpt(m.Options, o) {
				f.raise("mounts["+d+"].options", strings.Join(m.Options, ","), "+"+o)
				m.Options = append(m.Options, o)
			}
		}
		m.Options = removeOpt(m.Options, "rw")
		for _, o := range want {
			if c, ok := counterOption[o]; ok && hasOpt(m.Options, c) {
				// parseOptions applies options in order: a later "exec" would undo "noexec".
				f.raise("mounts["+d+"].options", strings.Join(m.Options, ","), "-"+c)
				m.Options = removeOpt(m.Options, c)
			}
		}
		if m.Type == "tmpfs" && !hasOptPrefix(m.Options, "size=") {
			f.raise("mounts["+d+"].options", strings.Join(m.Options, ","), "+"+tmpfsSize)
			m.Options = append(m.Options, tmpfsSize)
		}
		seen[d] = true
		out = append(out, m)
	}
	// Mounts happen in the spec's order (the OCI contract; runtime-tools checks it). A default the
	// spec lacks goes right after its closest parent mount, or first when it has none, so /dev/pts
	// still lands on /dev and never under it.
	front := 0
	after := map[string]int{}
	for _, m := range defaultMounts {
		if seen[m.Destination] {
			continue
		}
		m.Options = append([]string(nil), m.Options...)
		pos := front
		parent := ""
		for i, o := range out {
			if strings.HasPrefix(m.Destination, o.Destination+"/") && len(o.Destination) > len(parent) {
				parent, pos = o.Destination, i+1+after[o.Destination]
			}
		}
		if parent == "" {
			front++
		} else {
			after[parent]++
		}
		out = slices.Insert(out, pos, m)
		seen[m.Destination] = true
		f.raise("mounts", "", m.Type+" "+m.Destination)
	}
	f.spec.Mounts = out
	return nil
}

// scratchDests are the floor's default writable tmpfs mounts that share one superblock.
var scratchDests = map[string]bool{"/tmp": true, "/run": true, "/var/tmp": true}

// scratchTmpfs reports whether m is one of the floor's default /tmp, /run and /var/tmp tmpfs
// mounts exactly as the floor adds them (a spec's own mount there, with options of its own, is
// not). The setup child makes a container's scratch mounts directories of one tmpfs superblock
// (setup.MountPlan.Scratch), each still nosuid, nodev and noexec and none holding more than the
// floor's size (their sum is held to it): two superblocks fewer per container, each of which
// costs host memory for as long as the container lives (issue 14).
func scratchTmpfs(m specs.Mount) bool {
	if !scratchDests[m.Destination] {
		return false
	}
	for _, d := range defaultMounts {
		if d.Destination == m.Destination {
			return m.Type == d.Type && m.Source == d.Source && slices.Equal(m.Options, d.Options)
		}
	}
	return false
}

// counterOption is the option that clears what a floor option sets.
var counterOption = map[string]string{"nosuid": "suid", "nodev": "dev", "noexec": "exec"}

// floorOptions returns the options a mount of m's kind must carry.
func floorOptions(m specs.Mount) ([]string, error) {
	if isBind(m) {
		if hasOpt(m.Options, "ro") {
			return []string{"nosuid", "nodev"}, nil
		}
		// A writable bind (policy decides whether its source may be written) holds data, not
		// programs: noexec unless the spec asks for exec (policy decides whether it may: the
		// default grants it only on a tenant's own volumes, with exec_volumes), and idmapped to
		// the storage range so what container root writes is owned on the host by the storage
		// range, never by host root (idmap.StorageBase).
		if hasOpt(m.Options, "exec") && !hasOpt(m.Options, "noexec") {
			return []string{"nosuid", "nodev", "idmap"}, nil
		}
		return []string{"nosuid", "nodev", "noexec", "idmap"}, nil
	}
	switch m.Type {
	case "proc", "mqueue", "cgroup2":
		return []string{"nosuid", "nodev", "noexec"}, nil
	case "sysfs":
		return []string{"ro", "nosuid", "nodev", "noexec"}, nil
	case "tmpfs":
		if m.Destination == "/dev" {
			return []string{"nosuid", "noexec"}, nil
		}
		return []string{"nosuid", "nodev", "noexec"}, nil
	case "devpts":
		// Not nodev: the pty device nodes live on this mount.
		return []string{"nosuid", "noexec", "newinstance"}, nil
	}
	return nil, floorErr("mount type %q at %s is not allowed (allowed: bind, proc, sysfs, tmpfs, devpts, mqueue, cgroup2)", m.Type, m.Destination)
}

func removeOpt(opts []string, o string) []string {
	out := opts[:0]
	for _, x := range opts {
		if x != o {
			out = append(out, x)
		}
	}
	return out
}
