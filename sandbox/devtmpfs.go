package sandbox

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/sandbox/setup"
)

// The container's /dev, made by the runtime (issue 14): a detached tmpfs the runtime creates in
// the host's user namespace, with the minimal device nodes made in it by mknod, which the setup
// child attaches at /dev and fills with the usual links. Made by the setup child in the
// container's user namespace instead, a tmpfs cannot hold a usable device node (its superblock
// is marked SB_I_NODEV), and each of the six devices took a bind mount of the host's node: six
// mounts per container, each costing host memory for as long as the container lives.
//
// What the container can do with such a /dev (SECURITY.md, F3): make no device node in it — mknod
// of a device needs CAP_MKNOD in the host's user namespace, which container root never has
// (nor does any capability it holds in its own count for a superblock of the host's namespace),
// and Landlock refuses it first; change nothing of the superblock (reconfiguring it needs
// CAP_SYS_ADMIN in the host's user namespace; mount and remount are refused by seccomp anyway).
// The nodes are host root's, mode as on the host, so container root sees them owned by nobody and
// cannot chmod or chown them. It can remove or rename them in its own /dev (the directory is
// container root's, as before), which only takes them from itself; a bind-mounted node could not
// be removed, but gave nothing the node does not. The mount is nosuid and noexec as before, and
// the devices cgroup still allows only these devices.

// devTmpfsData are the tmpfs options the runtime's /dev is made with through fsconfig; a /dev
// whose data names any other (uid=, gid= in the container's ids, an SELinux context) is mounted
// by the setup child as before, with bind-mounted nodes.
var devTmpfsData = map[string]bool{"mode": true, "size": true, "nr_inodes": true, "nr_blocks": true, "huge": true}

// devTmpfsPlan returns the tmpfs options and mount attributes of mp, a tmpfs at /dev, when the
// runtime can make it; ok is false otherwise.
func devTmpfsPlan(mp setup.MountPlan) (opts [][2]string, attrs int, ok bool) {
	if mp.Dest != "/dev" || mp.Type != "tmpfs" {
		return nil, 0, false
	}
	for f := uintptr(1); f != 0 && f <= mp.Flags; f <<= 1 {
		if mp.Flags&f == 0 {
			continue
		}
		a, known := setup.MountAttr[f]
		if !known {
			return nil, 0, false
		}
		attrs |= a
	}
	if mp.Data != "" {
		for _, o := range strings.Split(mp.Data, ",") {
			k, v, _ := strings.Cut(o, "=")
			if !devTmpfsData[k] || v == "" {
				return nil, 0, false
			}
			opts = append(opts, [2]string{k, v})
		}
	}
	return opts, attrs, true
}

// devTmpfs makes the runtime's /dev for mp (see devTmpfsPlan): a detached tmpfs of mp's options,
// its root owned by container root (owner: the host uid and gid it maps to), holding each of
// setup.MinimalDevices as the host's node of that name is (device number and mode), host root's.
func devTmpfs(mp setup.MountPlan, opts [][2]string, attrs int, owner [2]uint32) (int, error) {
	fs, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsopen tmpfs: %w", err)
	}
	defer unix.Close(fs)
	opts = append([][2]string{{"uid", fmt.Sprint(owner[0])}, {"gid", fmt.Sprint(owner[1])}}, opts...)
	if mp.Source != "" {
		opts = append(opts, [2]string{"source", mp.Source})
	}
	for _, o := range opts {
		if err := unix.FsconfigSetString(fs, o[0], o[1]); err != nil {
			return -1, fmt.Errorf("tmpfs option %s=%s: %w", o[0], o[1], err)
		}
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return -1, fmt.Errorf("create tmpfs: %w", err)
	}
	// Detached, the tree is no one's to see until the child attaches it; nodes are made in it
	// first.
	mfd, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, attrs&^unix.MOUNT_ATTR_RDONLY)
	if err != nil {
		return -1, fmt.Errorf("fsmount tmpfs: %w", err)
	}
	if err := devNodes(mfd); err != nil {
		unix.Close(mfd)
		return -1, err
	}
	if attrs&unix.MOUNT_ATTR_RDONLY != 0 {
		if err := unix.MountSetattr(mfd, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != nil {
			unix.Close(mfd)
			return -1, fmt.Errorf("mount_setattr ro: %w", err)
		}
	}
	return mfd, nil
}

// devNodes makes each minimal device in dir as the host's node of that name is.
func devNodes(dir int) error {
	for _, name := range setup.MinimalDevices {
		var st unix.Stat_t
		if err := unix.Stat("/dev/"+name, &st); err != nil {
			return fmt.Errorf("host /dev/%s: %w", name, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFCHR {
			return fmt.Errorf("host /dev/%s is not a character device", name)
		}
		if err := unix.Mknodat(dir, name, unix.S_IFCHR|st.Mode&0o777, int(st.Rdev)); err != nil {
			return fmt.Errorf("mknod /dev/%s: %w", name, err)
		}
		// The umask must not narrow the host's mode.
		if err := unix.Fchmodat(dir, name, st.Mode&0o777, 0); err != nil {
			return fmt.Errorf("chmod /dev/%s: %w", name, err)
		}
	}
	return nil
}
