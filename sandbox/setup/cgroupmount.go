package setup

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// Child side: the container's own cgroups at /sys/fs/cgroup (or wherever the spec's cgroup mount
// goes), read-only. The child unshared its cgroup namespace right after the runtime placed it, so
// every hierarchy it mounts shows only its own subtree: its limits (memory.max, cpu.max,
// memory.limit_in_bytes, ...) for JVMs, Go's GOMAXPROCS/GOMEMLIMIT tooling and nginx, and never
// the host's counters or cgroup.procs. Only hierarchies the container is placed in are mounted
// (issue 8 §6): the cgroup namespace root of any other would be the host's root cgroup.

// roCgroupFlags are the flags of every cgroup mount.
const roCgroupFlags = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC

// mountCgroups mounts views at dest inside root. A pure v2 host has one hierarchy, mounted at
// dest itself; otherwise a read-only skeleton at dest (the runtime's shared one, or a directory of
// the staging tmpfs) holds one directory per hierarchy, named as on the host (memory, cpu, systemd, unified), which is where
// cgroup-aware software looks (it finds them through /proc/self/mountinfo).
func mountCgroups(root int, st *staging, dest string, views []CgroupView) error {
	if len(views) == 1 && views[0].Unified && views[0].Name == "" {
		target, err := mkdirInRoot(root, dest)
		if err != nil {
			return err
		}
		defer unix.Close(target)
		return mountOn(target, "cgroup2", "cgroup2", roCgroupFlags, "")
	}
	names := make([]string, len(views))
	for i, v := range views {
		if v.Name == "" || v.Name == "." || v.Name == ".." || strings.Contains(v.Name, "/") {
			return fmt.Errorf("cgroup hierarchy name %q", v.Name)
		}
		names[i] = v.Name
	}
	skel, err := st.skeleton(names)
	if err != nil {
		return err
	}
	defer unix.Close(skel)
	// Read-only before it is attached: the views are mounted on its directories all the same.
	if err := attachReadonly(root, skel, dest); err != nil {
		return err
	}
	// Resolve dest again: it is the skeleton now.
	dir, err := openInRoot(root, dest, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	for _, v := range views {
		if err := mountCgroupView(dir, v); err != nil {
			return err
		}
	}
	return nil
}

// mountCgroupView mounts one hierarchy on the directory v.Name of dir.
func mountCgroupView(dir int, v CgroupView) error {
	sub, err := unix.Openat(dir, v.Name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", v.Name, err)
	}
	defer unix.Close(sub)
	typ, data := "cgroup", v.Options
	if v.Unified {
		typ, data = "cgroup2", ""
	}
	if err := mountOn(sub, "cgroup", typ, roCgroupFlags, data); err != nil {
		return fmt.Errorf("at %s: %w", v.Name, err)
	}
	return nil
}
