package sandbox

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/sandbox/internal/mac"
	"bulwark.dev/bulwark/sandbox/setup"
)

// Parent side of the directories every container mounts read-only and never writes (issue 14):
// the empty directory masked directories are covered with, and the skeleton of the host's cgroup
// hierarchies (one empty directory per hierarchy) that a v1 or hybrid host's cgroup views are
// mounted on. Each is kept once per id range (one tenant's) under the state root's shared/
// directory, host root's, and each container gets a read-only, nosuid, nodev, noexec clone of it, idmapped through the container's
// user namespace so that container root sees it as its own (as it saw the piece of its staging
// tmpfs it replaces). Made per container in the setup child's staging tmpfs, they cost a
// superblock and an inode and a dentry per directory for the container's whole life (thirteen
// directories on a hybrid host); shared, they cost each container one mount per use, which it
// had already.
//
// The trust is the rootfs's: a tree shared by containers, mounted read-only and idmapped, which
// container root cannot write (a read-only mount; making it writable needs mount_setattr, which
// seccomp refuses, and CAP_SYS_ADMIN, which the floor drops) and which nothing else writes once
// made. A state root whose filesystem cannot be idmapped (tmpfs before Linux 6.3) leaves both to
// the staging tmpfs, as before, and so do an SELinux host and a state root that is not a tmpfs
// (see donateShared). Sharing stays within one id range, as the generated files' does: a shared
// directory is one inode, and a process that can read it can watch it (inotify: IN_OPEN,
// IN_ACCESS), so one tenant's container would see, as they happen, another tenant's containers
// list their /sys/fs/cgroup or a masked directory. A range's directories stay when its last
// container goes (two empty directories); the range is handed to another tenant only once no
// container holds it.

// sharedDirName is the state root's directory of shared directories.
const sharedDirName = "shared"

// donateShared appends to fds a detached clone of the shared empty directory (when cfg masks
// paths) and of the cgroup skeleton (when a mount asks for a v1 or hybrid host's cgroup views),
// idmapped through userns, and records their indices in cfg; where the state root cannot hold or
// idmap them, cfg keeps -1 and the child makes them in its staging tmpfs. So it does on an
// SELinux host: shared, they would carry the state root's label, which the container's policy
// need not let it search (the cgroup views lie below the skeleton); its own tmpfs keeps them as
// before. So it does on a state root that is not a tmpfs (as for the generated files): there,
// /sys/fs/cgroup would be the state root's disk filesystem, which systemd does not take for a v1
// or hybrid hierarchy (only a tmpfs: "Unknown filesystem type", ENOMEDIUM), unlike runc's tmpfs;
// and statfs of a cover would show the container the host's block device and its live usage,
// which other tenants' writes move. A state root on disk has a staging tmpfs anyway, for the
// generated files.
//
// uidBase is the container's id range (its first host uid): each range has its own.
func (r *Runtime) donateShared(cfg *setup.Config, userns int, uidBase uint32, macC mac.Container, fds []int) []int {
	cfg.MaskDirFD, cfg.CgroupSkelFD = -1, -1
	if macC.Layers.SELinux {
		return fds
	}
	var fs unix.Statfs_t
	if unix.Statfs(r.opts.Root, &fs) != nil || fs.Type != unix.TMPFS_MAGIC {
		return fds
	}
	rng := strconv.FormatUint(uint64(uidBase), 10)
	if len(cfg.MaskedPaths) > 0 {
		if fd, err := r.sharedDir(rng+"-empty", 0o555, nil, userns); err == nil {
			cfg.MaskDirFD = len(fds)
			fds = append(fds, fd)
		}
	}
	if names := skeletonNames(cfg); names != nil {
		sum := sha256.Sum256([]byte(strings.Join(names, "\x00")))
		if fd, err := r.sharedDir(rng+"-cgroup-"+hex.EncodeToString(sum[:16]), 0o755, names, userns); err == nil {
			cfg.CgroupSkelFD = len(fds)
			fds = append(fds, fd)
		}
	}
	return fds
}

// skeletonNames returns the directories of the cgroup skeleton cfg's cgroup mount needs, or nil
// when it needs none (no cgroup mount, or a pure v2 host's one hierarchy mounted at the
// destination itself; see setup.mountCgroups).
func skeletonNames(cfg *setup.Config) []string {
	v := cfg.Cgroups
	if len(v) == 0 || len(v) == 1 && v[0].Unified && v[0].Name == "" {
		return nil
	}
	for _, m := range cfg.Mounts {
		if m.Type != "cgroup2" {
			continue
		}
		names := make([]string, len(v))
		for i := range v {
			if v[i].Name == "" || v[i].Name == "." || v[i].Name == ".." || strings.Contains(v[i].Name, "/") {
				return nil // the child refuses it, and says why
			}
			names[i] = v[i].Name
		}
		return names
	}
	return nil
}

// sharedDir returns a detached read-only, nosuid, nodev, noexec clone, idmapped through userns,
// of the shared directory name (mode, holding the empty directories subdirs), made first if no
// container made it yet.
func (r *Runtime) sharedDir(name string, mode uint32, subdirs []string, userns int) (int, error) {
	dir := filepath.Join(r.opts.Root, sharedDirName)
	p := filepath.Join(dir, name)
	if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
		if err := makeShared(dir, p, mode, subdirs); err != nil {
			return -1, err
		}
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, p, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_SYMLINK_NOFOLLOW)
	if err != nil {
		return -1, fmt.Errorf("shared %s: open_tree: %w", name, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Uid != 0 || st.Mode&0o7777 != mode {
		unix.Close(fd)
		return -1, fmt.Errorf("shared %s: not a directory of host root's with mode %#o (%#o, %v)", name, mode, st.Mode, err)
	}
	// What is mounted is a tmpfs's (donateShared), whatever is mounted in the state root.
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil || fs.Type != unix.TMPFS_MAGIC {
		unix.Close(fd)
		return -1, fmt.Errorf("shared %s: not on a tmpfs (%#x, %v)", name, fs.Type, err)
	}
	attr := &unix.MountAttr{
		Attr_set:    unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC | unix.MOUNT_ATTR_IDMAP,
		Userns_fd:   uint64(userns),
		Propagation: unix.MS_PRIVATE,
	}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, attr); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("shared %s: mount_setattr: %w", name, err)
	}
	return fd, nil
}

// makeShared makes the shared directory p (mode, holding subdirs) in dir: built under a temporary
// name and renamed into place whole, so a container never clones a half-made one; one made by
// another container meanwhile wins.
func makeShared(dir, p string, mode uint32, subdirs []string) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("shared dirs: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, ".tmp-")
	if err != nil {
		return fmt.Errorf("shared dirs: %w", err)
	}
	defer os.RemoveAll(tmp)
	for _, s := range subdirs {
		if err := os.Mkdir(filepath.Join(tmp, s), 0o755); err != nil {
			return fmt.Errorf("shared dirs: %w", err)
		}
		// The umask must not narrow the mode.
		if err := os.Chmod(filepath.Join(tmp, s), 0o755); err != nil {
			return fmt.Errorf("shared dirs: %w", err)
		}
	}
	if err := os.Chmod(tmp, os.FileMode(mode)); err != nil {
		return fmt.Errorf("shared dirs: %w", err)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, p, unix.RENAME_NOREPLACE); err != nil && err != unix.EEXIST {
		return fmt.Errorf("shared dir %s: %w", p, err)
	}
	return nil
}
