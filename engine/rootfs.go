package engine

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/image"
)

// The sandbox idmaps the rootfs directory it is given (open_tree + MOUNT_ATTR_IDMAP), and an
// overlayfs mount cannot be idmapped on this kernel. So the engine flattens an image's verified
// layers once, through a read-only overlay mounted in a private mount namespace (the kernel
// applies whiteouts and opaque directories), into <root>/rootfs/sha256/<manifest>/: a plain
// directory, shared read-only by every container of that image, with the mountpoints the sandbox
// needs already in it — so the sandbox never writes into it.
//
// A container whose mounts need a directory the image lacks (-v /data, --tmpfs /cache, a
// workdir) gets its own copy of the tree made of hard links (no file data is copied), below its
// engine state, so one container's mountpoints never appear in another's root.

// floorMountpoints are the destinations of the floor's default mounts and generated files.
var (
	floorDirs  = []string{"/proc", "/sys", "/dev", "/tmp", "/run", "/var/tmp", "/etc"}
	floorFiles = []string{"/etc/hostname", "/etc/hosts", "/etc/resolv.conf"}
)

// imageRootfs returns the flattened rootfs of the image desc, building it on first use.
func (e *Engine) imageRootfs(desc ocispec.Descriptor) (string, error) {
	base := filepath.Join(e.cfg.Root, "rootfs", "sha256")
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", fmt.Errorf("create rootfs cache: %w", err)
	}
	final := filepath.Join(base, desc.Digest.Encoded())
	if _, err := os.Stat(filepath.Join(final, ".bulwark-complete")); err == nil {
		return final, nil
	}
	unlock, err := flockFile(filepath.Join(base, "."+desc.Digest.Encoded()[:16]+".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(final, ".bulwark-complete")); err == nil {
		return final, nil // built by another process while we waited
	}
	os.RemoveAll(final) // a build interrupted by a crash
	layers, err := e.store.Unpack(desc, image.UnpackOptions{})
	if err != nil {
		return "", fmt.Errorf("unpack verified layers: %w", err)
	}
	tmp, err := os.MkdirTemp(base, ".build-")
	if err != nil {
		return "", fmt.Errorf("rootfs build dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	tree := filepath.Join(tmp, "tree")
	if len(layers) == 1 {
		err = copyTree(layers[0].Dir, tree, false)
	} else {
		err = flattenLayers(e.store, desc, tree)
	}
	if err != nil {
		return "", fmt.Errorf("flatten image %s: %w", desc.Digest, err)
	}
	if err := addMountpoints(tree, floorDirs, floorFiles); err != nil {
		return "", err
	}
	// The tree's root must be traversable by the container's mapped root.
	if err := os.Chmod(tree, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(tree, ".bulwark-complete"), nil, 0o400); err != nil {
		return "", err
	}
	if err := os.Rename(tree, final); err != nil {
		return "", fmt.Errorf("publish rootfs: %w", err)
	}
	return final, nil
}

// flattenLayers mounts the overlay of the image's layers read-only in a private mount namespace
// of one OS thread, copies the merged view to dst, and lets the thread die: the mount can never
// outlive the copy nor be seen by the host.
func flattenLayers(store *image.Store, desc ocispec.Descriptor, dst string) error {
	rfs, err := store.Rootfs(desc, image.UnpackOptions{})
	if err != nil {
		return err
	}
	opts, err := rfs.MountOptions(false)
	if err != nil {
		return err
	}
	mnt, err := os.MkdirTemp(filepath.Dir(dst), ".mnt-")
	if err != nil {
		return err
	}
	defer os.Remove(mnt)
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread's mount namespace is private and it exits with the goroutine.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("unshare mount namespace: %w", err)
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			errc <- fmt.Errorf("make / private: %w", err)
			return
		}
		if err := unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
			errc <- fmt.Errorf("mount overlay of %d layers: %w", len(rfs.Lower), err)
			return
		}
		errc <- copyTree(mnt, dst, false)
	}()
	return <-errc
}

// copyTree copies src to dst preserving modes, owners and hard links; with link, regular files
// are hard-linked to src instead of copied. Device nodes, fifos and sockets are skipped: the
// unpacker refuses them, and the overlay shows whiteouts as absent.
func copyTree(src, dst string, link bool) error {
	type inode struct{ dev, ino uint64 }
	seen := map[inode]string{}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		mode := os.FileMode(st.Mode & 0o7777)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if err := os.Mkdir(target, 0o700); err != nil && !(rel == "." && errors.Is(err, os.ErrExist)) {
				return err
			}
		case unix.S_IFLNK:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(l, target); err != nil {
				return err
			}
			return os.Lchown(target, int(st.Uid), int(st.Gid))
		case unix.S_IFREG:
			key := inode{uint64(st.Dev), st.Ino}
			if first, ok := seen[key]; ok {
				return os.Link(first, target)
			}
			if st.Nlink > 1 {
				seen[key] = target
			}
			if link {
				return os.Link(p, target)
			}
			if err := copyFile(p, target); err != nil {
				return err
			}
		default:
			return nil
		}
		if err := os.Lchown(target, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
		// chmod after chown: chown clears setuid/setgid bits.
		return os.Chmod(target, mode)
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}

// addMountpoints creates missing directories and empty files inside root. Every path is
// resolved with openat2(RESOLVE_IN_ROOT) from the tree's root: a symlink in the image
// (/tmp -> /host/x) is followed as the container would follow it, inside the tree, never onto
// the host.
func addMountpoints(root string, dirs, files []string) error {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open rootfs %s: %w", root, err)
	}
	defer unix.Close(rfd)
	for _, d := range dirs {
		if err := mkdirInRoot(rfd, d); err != nil {
			return fmt.Errorf("mountpoint %s: %w", d, err)
		}
	}
	for _, f := range files {
		if err := mkdirInRoot(rfd, path.Dir(f)); err != nil {
			return fmt.Errorf("mountpoint %s: %w", f, err)
		}
		fd, err := inRoot(rfd, f, unix.O_CREAT|unix.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("mountpoint %s: %w", f, err)
		}
		unix.Close(fd)
	}
	return nil
}

// missingMountpoints lists the destinations not present in root.
func missingMountpoints(root string, dests []string) ([]string, error) {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open rootfs %s: %w", root, err)
	}
	defer unix.Close(rfd)
	var out []string
	for _, d := range dests {
		fd, err := inRoot(rfd, d, unix.O_PATH, 0)
		if err != nil {
			out = append(out, d)
			continue
		}
		unix.Close(fd)
	}
	return out, nil
}

func inRoot(rfd int, p string, flags int, mode uint64) (int, error) {
	rel := strings.TrimPrefix(path.Clean("/"+p), "/")
	if rel == "" {
		rel = "."
	}
	return unix.Openat2(rfd, rel, &unix.OpenHow{
		Flags: uint64(flags | unix.O_CLOEXEC), Mode: mode, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
}

// mkdirInRoot creates p and its missing parents inside the tree, each component resolved from
// the tree's root.
func mkdirInRoot(rfd int, p string) error {
	parts := strings.Split(strings.Trim(path.Clean("/"+p), "/"), "/")
	for i := range parts {
		if parts[i] == "" {
			continue
		}
		sofar := strings.Join(parts[:i+1], "/")
		fd, err := inRoot(rfd, sofar, unix.O_PATH|unix.O_DIRECTORY, 0)
		if err == nil {
			unix.Close(fd)
			continue
		}
		if !errors.Is(err, unix.ENOENT) {
			return err
		}
		parent, err := inRoot(rfd, strings.Join(parts[:i], "/"), unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			return err
		}
		err = unix.Mkdirat(parent, parts[i], 0o755)
		unix.Close(parent)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
	}
	return nil
}

// openInRoot opens a file of the image for reading, resolved inside root.
func openInRoot(root, p string) (*os.File, error) {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(rfd)
	fd, err := inRoot(rfd, p, unix.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), p), nil
}

func flockFile(p string) (func(), error) {
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", p, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	return func() { f.Close() }, nil
}

// PruneRootfs removes the flattened trees of images no longer in the store that no container
// (running or stopped) was created from. A new run never uses such a tree: verification
// resolves the image in the store first.
func (e *Engine) PruneRootfs() (removed int, err error) {
	base := filepath.Join(e.cfg.Root, "rootfs", "sha256")
	ents, err := os.ReadDir(base)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("list rootfs cache: %w", err)
	}
	keep := map[string]bool{}
	imgs, err := e.store.List()
	if err != nil {
		return 0, err
	}
	for _, im := range imgs {
		keep[im.Descriptor.Digest.Encoded()] = true
	}
	ctrs, err := os.ReadDir(filepath.Join(e.cfg.Root, "engine"))
	if err != nil {
		return 0, fmt.Errorf("list containers: %w", err)
	}
	for _, c := range ctrs {
		m, err := e.readMeta(c.Name())
		if err != nil {
			return 0, fmt.Errorf("container %s: %w (keeping every tree)", c.Name(), err)
		}
		keep[strings.TrimPrefix(m.Image.Digest, "sha256:")] = true
	}
	for _, ent := range ents {
		name := ent.Name()
		if strings.HasPrefix(name, ".") || keep[name] {
			continue
		}
		// The build lock, so a tree is never removed while being built. Lock files stay: removing
		// one another process waits on would let two holders exist.
		unlock, err := flockFile(filepath.Join(base, "."+name[:min(16, len(name))]+".lock"))
		if err != nil {
			return removed, err
		}
		err = os.RemoveAll(filepath.Join(base, name))
		unlock()
		if err != nil {
			return removed, fmt.Errorf("remove rootfs %s: %w", name, err)
		}
		removed++
	}
	return removed, nil
}
