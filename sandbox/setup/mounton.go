package setup

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// mountOn mounts a new filesystem of fstype (source, flags and data as mount(2) takes them) on
// the file or directory target through the descriptor-based mount API (fsopen, fsconfig, fsmount,
// move_mount). mount(2) would name target by its /proc/self/fd link, and each such lookup leaves
// a dentry and an inode in the host's /proc under the setup child's pid — the container's init,
// whose /proc entries live as long as it does (issue 14). What fsmount cannot express the same
// way (a flag it has no attribute for, data with quotes, whose commas do not split it) goes
// through mount(2) as before.
func mountOn(target int, source, fstype string, flags uintptr, data string) error {
	attrs, sbFlags, ok := fsmountFlags(flags)
	if !ok || strings.ContainsAny(data, `"'`) {
		if err := unix.Mount(source, fdPath(target), fstype, flags, data); err != nil {
			return fmt.Errorf("mount(%s, %s): %w", fstype, data, err)
		}
		return nil
	}
	fs, err := unix.Fsopen(fstype, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen %s: %w", fstype, err)
	}
	defer unix.Close(fs)
	if source != "" {
		if err := unix.FsconfigSetString(fs, "source", source); err != nil {
			return fmt.Errorf("%s source %s: %w", fstype, source, err)
		}
	}
	for _, f := range sbFlags {
		if err := unix.FsconfigSetFlag(fs, f); err != nil {
			return fmt.Errorf("%s option %s: %w", fstype, f, err)
		}
	}
	for _, o := range strings.Split(data, ",") {
		if o == "" {
			continue
		}
		k, v, isValue := strings.Cut(o, "=")
		if isValue {
			err = unix.FsconfigSetString(fs, k, v)
		} else {
			err = unix.FsconfigSetFlag(fs, k)
		}
		if err != nil {
			return fmt.Errorf("%s option %s: %w", fstype, o, err)
		}
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return fmt.Errorf("create %s (%s): %w", fstype, data, err)
	}
	mfd, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, attrs)
	if err != nil {
		return fmt.Errorf("fsmount %s: %w", fstype, err)
	}
	defer unix.Close(mfd)
	return moveOnto(mfd, target)
}

// fsmountFlags splits mount(2)'s flags for a new mount into fsmount's attributes and the
// superblock flags fsconfig sets (MS_RDONLY is both, as mount(2) makes it); ok is false if a
// flag has no such equivalent.
func fsmountFlags(flags uintptr) (attrs int, sbFlags []string, ok bool) {
	for f := uintptr(1); f != 0 && f <= flags; f <<= 1 {
		if flags&f == 0 {
			continue
		}
		if a, known := MountAttr[f]; known {
			attrs |= a
		}
		if s, known := sbFlag[f]; known {
			sbFlags = append(sbFlags, s)
		}
		if _, known := MountAttr[f]; !known && sbFlag[f] == "" {
			return 0, nil, false
		}
	}
	return attrs, sbFlags, true
}

// MountAttr maps mount(2)'s per-mount flags to fsmount's attributes.
var MountAttr = map[uintptr]int{
	unix.MS_RDONLY: unix.MOUNT_ATTR_RDONLY, unix.MS_NOSUID: unix.MOUNT_ATTR_NOSUID,
	unix.MS_NODEV: unix.MOUNT_ATTR_NODEV, unix.MS_NOEXEC: unix.MOUNT_ATTR_NOEXEC,
	unix.MS_NOATIME: unix.MOUNT_ATTR_NOATIME, unix.MS_STRICTATIME: unix.MOUNT_ATTR_STRICTATIME,
	unix.MS_RELATIME: unix.MOUNT_ATTR_RELATIME, unix.MS_NODIRATIME: unix.MOUNT_ATTR_NODIRATIME,
	unix.MS_NOSYMFOLLOW: unix.MOUNT_ATTR_NOSYMFOLLOW,
}

// sbFlag maps mount(2)'s superblock flags to the fsconfig flags that set them.
var sbFlag = map[uintptr]string{
	unix.MS_RDONLY: "ro", unix.MS_SYNCHRONOUS: "sync", unix.MS_DIRSYNC: "dirsync", unix.MS_LAZYTIME: "lazytime",
}
