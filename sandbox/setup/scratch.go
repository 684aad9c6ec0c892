package setup

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Child side: the floor's scratch mounts (/tmp, /run and /var/tmp as the floor adds them, see
// sandbox.scratchTmpfs) are directories of one tmpfs superblock instead of one superblock each
// (issue 14): a superblock costs host memory for as long as the container lives (its struct,
// root inode and dentry, shrinker and per-memory-cgroup lists, and a shrinker slot in every
// memory cgroup of the host). Each mount keeps its own root mode and the mount flags the floor
// gave it (nosuid, nodev, noexec); none can hold more than the size every one of them had alone,
// and together they hold no more than that either. A superblock's limits are the first mount's
// data: the floor gives all of them the same.

// scratchMode is a tmpfs root's mode when the data names none.
const scratchMode = 0o1777

// scratchRun returns how many mounts from the first of ms on are adjacent scratch mounts: one
// superblock serves a run of two or more, so every mount is still made in the plan's order.
func scratchRun(ms []MountPlan) int {
	n := 0
	for n < len(ms) && ms[n].Scratch {
		n++
	}
	return n
}

// mountScratch mounts the run ms of scratch tmpfs mounts as directories of one new tmpfs. The
// superblock is mounted over the first's target only while a detached clone of each directory is
// made (seen by no process: the setup child is alone in its mount namespace) and is moved away
// before any clone is attached.
func mountScratch(root int, ms []MountPlan) error {
	first := ms[0]
	for _, m := range ms[1:] {
		if m.Type != first.Type || m.Flags != first.Flags || dataWithoutMode(m.Data) != dataWithoutMode(first.Data) {
			return fmt.Errorf("scratch mounts %s and %s differ (%s %#x %q, %s %#x %q): they cannot share a superblock",
				first.Dest, m.Dest, first.Type, first.Flags, first.Data, m.Type, m.Flags, m.Data)
		}
	}
	clones, err := scratchClones(root, ms)
	defer CloseAll(clones)
	if err != nil {
		return err
	}
	for i, m := range ms {
		target, err := mkdirInRoot(root, m.Dest)
		if err != nil {
			return err
		}
		err = moveOnto(clones[i], target)
		unix.Close(target)
		if err != nil {
			return fmt.Errorf("%s: %w", m.Dest, err)
		}
	}
	return nil
}

// scratchClones makes the superblock and returns a detached clone of one new directory in it
// per mount of ms, with that mount's mode.
func scratchClones(root int, ms []MountPlan) ([]int, error) {
	first := ms[0]
	target, err := mkdirInRoot(root, first.Dest)
	if err != nil {
		return nil, err
	}
	defer unix.Close(target)
	if err := mountOn(target, first.Source, first.Type, first.Flags&^(unix.MS_BIND|unix.MS_REC), first.Data); err != nil {
		return nil, err
	}
	sb, err := openInRoot(root, first.Dest, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		unix.Unmount(fdPath(target), unix.MNT_DETACH) //nolint:errcheck // the setup fails anyway
		return nil, err
	}
	defer unix.Close(sb)
	var clones []int
	err = func() error {
		for i, m := range ms {
			mode, err := dataMode(m.Data)
			if err != nil {
				return fmt.Errorf("%s: %w", m.Dest, err)
			}
			name := strconv.Itoa(i)
			if err := unix.Mkdirat(sb, name, mode); err != nil {
				return fmt.Errorf("%s: mkdir: %w", m.Dest, err)
			}
			// The umask must not narrow the mode asked for.
			if err := unix.Fchmodat(sb, name, mode, 0); err != nil {
				return fmt.Errorf("%s: chmod: %w", m.Dest, err)
			}
			clone, err := unix.OpenTree(sb, name, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
			if err != nil {
				return fmt.Errorf("%s: clone: %w", m.Dest, err)
			}
			clones = append(clones, clone)
		}
		return nil
	}()
	// The superblock's own root leaves the container's tree: only the clones of its directories
	// stay. Parked, pivot_root detaches it with the host's tree (see park).
	if park(sb) != nil {
		if uerr := unix.Unmount(fdPath(sb), unix.MNT_DETACH); uerr != nil && err == nil {
			err = fmt.Errorf("detach the scratch tmpfs: %w", uerr)
		}
	}
	return clones, err
}

// dataMode returns the mode a tmpfs mount's data gives its root (mode=, octal).
func dataMode(data string) (uint32, error) {
	for _, o := range strings.Split(data, ",") {
		if v, ok := strings.CutPrefix(o, "mode="); ok {
			mode, err := strconv.ParseUint(v, 8, 32)
			if err != nil || mode&^0o7777 != 0 {
				return 0, fmt.Errorf("tmpfs mode %q", v)
			}
			return uint32(mode), nil
		}
	}
	return scratchMode, nil
}

// dataWithoutMode is a tmpfs mount's data without its root's mode.
func dataWithoutMode(data string) string {
	var out []string
	for _, o := range strings.Split(data, ",") {
		if !strings.HasPrefix(o, "mode=") {
			out = append(out, o)
		}
	}
	return strings.Join(out, ",")
}
