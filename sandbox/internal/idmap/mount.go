package idmap

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// IDMappedMount returns a detached mount of src whose ownership is shifted through the user
// namespace usernsFD refers to: a file owned by host id N appears owned by the id N maps to in
// that namespace (host root -> the tenant's base id). The caller attaches it with move_mount(2)
// and closes the fd.
//
// The clone is not recursive (no AT_RECURSIVE): src is a layer or rootfs directory the runtime
// prepared, and pulling in whatever host mounts happen to sit below it would expose them to the
// container and fail outright on file systems that cannot be idmapped. A src that was swapped for
// a symlink fails instead of mapping the link's target.
func IDMappedMount(src string, usernsFD int) (mountFD int, err error) {
	return idmappedClone(unix.AT_FDCWD, src, src, usernsFD)
}

// IDMappedMountFD is IDMappedMount of the directory dirFD already refers to (an O_PATH
// descriptor resolved once: nothing is walked again); name is what errors call it.
func IDMappedMountFD(dirFD int, name string, usernsFD int) (mountFD int, err error) {
	return idmappedClone(dirFD, "", name, usernsFD)
}

func idmappedClone(dirFD int, path, src string, usernsFD int) (int, error) {
	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC | unix.AT_SYMLINK_NOFOLLOW)
	if path == "" {
		flags |= unix.AT_EMPTY_PATH
	}
	fd, err := unix.OpenTree(dirFD, path, flags)
	if err != nil {
		return -1, fmt.Errorf("open_tree %s: %w", src, err)
	}
	// With AT_SYMLINK_NOFOLLOW a symlink is cloned as the mount's root rather than refused, so
	// check what was opened: only a directory is a rootfs or a layer.
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("stat %s: %w", src, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		unix.Close(fd)
		return -1, fmt.Errorf("idmap mount of %s: not a directory (mode %#o)", src, st.Mode)
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(usernsFD)}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("idmap mount of %s: %w", src, err)
	}
	return fd, nil
}
