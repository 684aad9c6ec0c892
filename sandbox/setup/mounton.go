package setup

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// mountOn mounts a new filesystem of fstype (source, flags and data as mount(2) takes them) on
// the directory target: target becomes the working directory and mount(2) mounts on ".". Naming
// target by its /proc/self/fd link instead would leave a dentry and an inode in the host's /proc
// under the setup child's pid — the container's init, whose /proc entries live as long as it does
// (issue 14). The descriptor-based API (fsopen, an fsconfig per option, fsmount, move_mount) does
// the same in eight or more system calls and an anonymous mount namespace per mount: ~5 us more
// per mount here, and a container on a cgroup v1 host has 16 such mounts. The working directory
// stays on the last target until pivot changes it; nothing in between resolves a relative path.
func mountOn(target int, source, fstype string, flags uintptr, data string) error {
	if err := unix.Fchdir(target); err != nil {
		return fmt.Errorf("enter the mountpoint of %s: %w", fstype, err)
	}
	if err := unix.Mount(source, ".", fstype, flags, data); err != nil {
		return fmt.Errorf("mount(%s, %s): %w", fstype, data, err)
	}
	return nil
}

// MountAttr maps mount(2)'s per-mount flags to fsmount's attributes.
var MountAttr = map[uintptr]int{
	unix.MS_RDONLY: unix.MOUNT_ATTR_RDONLY, unix.MS_NOSUID: unix.MOUNT_ATTR_NOSUID,
	unix.MS_NODEV: unix.MOUNT_ATTR_NODEV, unix.MS_NOEXEC: unix.MOUNT_ATTR_NOEXEC,
	unix.MS_NOATIME: unix.MOUNT_ATTR_NOATIME, unix.MS_STRICTATIME: unix.MOUNT_ATTR_STRICTATIME,
	unix.MS_RELATIME: unix.MOUNT_ATTR_RELATIME, unix.MS_NODIRATIME: unix.MOUNT_ATTR_NODIRATIME,
	unix.MS_NOSYMFOLLOW: unix.MOUNT_ATTR_NOSYMFOLLOW,
}
