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

	"bulwark.dev/bulwark/sandbox/setup"
	"golang.org/x/sys/unix"
)

// Parent side of the generated /etc files (issue 14): on a state root in memory (a tmpfs, as
// /run/bulwark-runc is), each is kept once per id range and content under the state root's etc/
// directory and shared, read-only, by every container of that range with the same content (the
// same resolv.conf, a pod's containers' hostname and hosts), instead of a page of tmpfs per file
// and container. On a state root on disk the links and files would be journalled metadata
// operations on the start path (3 ms a create, measured on ext4 under load): there the child
// writes them into its own staging tmpfs instead. A file is host root's, mode 0444,
// and bind-mounted read-only, nosuid, nodev and noexec without an idmap: container root sees it
// owned by nobody and cannot write it even through a mount it made writable (it has no
// capability over an unmapped owner). Sharing stays within one id range (one tenant): the link
// count a container sees (stat) counts only its own tenant's containers.
//
// Each container's directory holds a hard link to each of its files: the link count says who
// still uses a shared file, and the container holds its own even if the shared name goes. The
// last container to release a file removes it.

// generatedPrefix names a container's links to its shared generated files.
const generatedPrefix = "etc-"

func (r *Runtime) generatedDir() string { return filepath.Join(r.opts.Root, "etc") }

// donateGenerated links a shared copy of each of cfg.Files into the container's directory dir,
// appends a detached read-only clone of each to fds and records its index in the file's plan,
// where the state root is a tmpfs (otherwise the child writes them). It is the last of the
// descriptors the runtime donates (donate), so it checks their number.
func (r *Runtime) donateGenerated(cfg *setup.Config, dir string, uidBase uint32, fds []int) ([]int, error) {
	var fs unix.Statfs_t
	if len(cfg.Files) == 0 || unix.Statfs(r.opts.Root, &fs) != nil || fs.Type != unix.TMPFS_MAGIC {
		return checkDonated(fds)
	}
	if err := os.Mkdir(r.generatedDir(), 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fds, fmt.Errorf("generated files dir: %w", err)
	}
	for i := range cfg.Files {
		f := &cfg.Files[i]
		shared, err := r.linkGenerated(dir, uidBase, f.Content)
		if err != nil {
			return fds, fmt.Errorf("%s: %w", f.Dest, err)
		}
		fd, err := unix.OpenTree(unix.AT_FDCWD, shared, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
		if err != nil {
			return fds, fmt.Errorf("%s: open_tree: %w", f.Dest, err)
		}
		attr := &unix.MountAttr{
			Attr_set:    unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC,
			Propagation: unix.MS_PRIVATE,
		}
		if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, attr); err != nil {
			unix.Close(fd)
			return fds, fmt.Errorf("%s: mount_setattr: %w", f.Dest, err)
		}
		f.SrcFD, f.Content = len(fds), ""
		fds = append(fds, fd)
	}
	return checkDonated(fds)
}

// checkDonated refuses more descriptors than one message carries.
func checkDonated(fds []int) ([]int, error) {
	if len(fds) > setup.MaxFDs {
		return fds, fmt.Errorf("too many mounts: %d descriptors exceed %d", len(fds), setup.MaxFDs)
	}
	return fds, nil
}

// linkGenerated links the shared file of content for uidBase into dir (making it first if no
// container has it) and returns the shared file's path: what the container's mount shows as its
// source, which names no container.
func (r *Runtime) linkGenerated(dir string, uidBase uint32, content string) (string, error) {
	sum := sha256.Sum256([]byte(content))
	name := strconv.FormatUint(uint64(uidBase), 10) + "-" + hex.EncodeToString(sum[:])
	shared := filepath.Join(r.generatedDir(), name)
	own := filepath.Join(dir, generatedPrefix+name)
	// A race with the last user's release can take the shared name away between the attempts.
	for try := 0; try < 3; try++ {
		err := unix.Link(shared, own)
		if err == nil {
			return shared, nil
		}
		if err != unix.ENOENT {
			return "", fmt.Errorf("link %s: %w", shared, err)
		}
		if err := writeShared(shared, content); err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("link %s: kept disappearing", shared)
}

// writeShared makes the shared file at p holding content, unless another container just did.
func writeShared(p, content string) error {
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-")
	if err != nil {
		return fmt.Errorf("generated file: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(content)
	if err == nil {
		err = tmp.Chmod(0o444)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("generated file: %w", err)
	}
	if err := unix.Link(tmp.Name(), p); err != nil && err != unix.EEXIST {
		return fmt.Errorf("generated file %s: %w", p, err)
	}
	return nil
}

// removeState removes a container's state directory dir: its links to shared generated files
// and each shared file no other container links to any more, every other entry, state.json last,
// then dir itself. One listing of dir, through plain system calls: the generated links' release
// and os.RemoveAll listed it once each, through a file registered with the runtime's poller
// (issue 14). A dir already gone is fine.
func (r *Runtime) removeState(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == unix.ENOENT {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove state: %w", &os.PathError{Op: "open", Path: dir, Err: err})
	}
	d := os.NewFile(uintptr(fd), dir)
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("remove state: %w", err)
	}
	for _, name := range names {
		if name == stateName {
			continue
		}
		if err := r.removeEntry(fd, dir, name); err != nil {
			return err
		}
	}
	if err := r.removeEntry(fd, dir, stateName); err != nil {
		return err
	}
	if err := unix.Rmdir(dir); err != nil && err != unix.ENOENT {
		return fmt.Errorf("remove state: %w", &os.PathError{Op: "rmdir", Path: dir, Err: err})
	}
	return nil
}

// removeEntry removes the entry name of the container's state directory dir (open as fd),
// releasing the shared generated file it links to, if it is such a link.
func (r *Runtime) removeEntry(fd int, dir, name string) error {
	err := unix.Unlinkat(fd, name, 0)
	switch {
	case err == unix.EISDIR:
		err = os.RemoveAll(filepath.Join(dir, name))
	case err == unix.ENOENT:
		err = nil
	case err != nil:
		err = &os.PathError{Op: "unlink", Path: filepath.Join(dir, name), Err: err}
	}
	if err != nil {
		return fmt.Errorf("remove state: %w", err)
	}
	name, ok := strings.CutPrefix(name, generatedPrefix)
	if !ok {
		return nil
	}
	shared := filepath.Join(r.generatedDir(), name)
	var st unix.Stat_t
	if unix.Stat(shared, &st) == nil && st.Nlink == 1 {
		// A container linking it right now either linked first (it keeps its own link) or
		// finds it gone and makes it again.
		if err := unix.Unlink(shared); err != nil && err != unix.ENOENT {
			return fmt.Errorf("generated file: %w", &os.PathError{Op: "unlink", Path: shared, Err: err})
		}
	}
	return nil
}
