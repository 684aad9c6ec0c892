package engine

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/openat2"
	"bulwark.dev/bulwark/sandbox"
)

// fillVolume copies what the image has at dst into a new volume's data directory, as docker does
// for a volume mounted where the image has files. The source is the image's merged view, dst
// resolved inside it (a symlink in the image is followed as the container would, never onto the
// host); every entry is copied by descriptor, never following a symlink, owned by the storage
// range (image id N becomes sandbox.StorageIDBase+N), setuid and setgid bits dropped. Device
// nodes and fifos are skipped (the volume is nodev anyway). A dst the image lacks, or that is
// not a directory, leaves the volume empty; copied says whether the image had a directory there.
func fillVolume(r *imageRoot, dst, data string) (copied bool, err error) {
	if r.view == nil {
		v, err := r.rfs.Mount()
		if err != nil {
			return false, fmt.Errorf("view of the image: %w", err)
		}
		r.view = v
	}
	rel := strings.TrimPrefix(path.Clean("/"+dst), "/")
	src, err := openat2.Open(int(r.view.Fd()), rel, &unix.OpenHow{
		Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("image content at %s: %w", dst, err)
	}
	defer unix.Close(src)
	out, err := unix.Open(data, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("volume data %s: %w", data, err)
	}
	defer unix.Close(out)
	if err := copyMeta(src, out, "/"); err != nil {
		return false, fmt.Errorf("volume root: %w", err)
	}
	return true, copyDir(src, out, dst)
}

// copyDir copies the entries of the directory src into the directory out.
func copyDir(src, out int, where string) error {
	dup, err := unix.FcntlInt(uintptr(src), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	d := os.NewFile(uintptr(dup), where)
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	for _, name := range names {
		p := where + "/" + name
		var st unix.Stat_t
		if err := unix.Fstatat(src, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if err := unix.Mkdirat(out, name, 0o700); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			sfd, err := unix.Openat(src, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			ofd, err := unix.Openat(out, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				unix.Close(sfd)
				return fmt.Errorf("%s: %w", p, err)
			}
			err = copyDir(sfd, ofd, p)
			if err == nil {
				err = copyMeta(sfd, ofd, p)
			}
			unix.Close(sfd)
			unix.Close(ofd)
			if err != nil {
				return err
			}
		case unix.S_IFREG:
			if err := copyFile(src, out, name, p); err != nil {
				return err
			}
		case unix.S_IFLNK:
			buf := make([]byte, unix.PathMax)
			n, err := unix.Readlinkat(src, name, buf)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			if err := unix.Symlinkat(string(buf[:n]), out, name); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			if err := chownStorage(out, name, &st); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
	}
	return nil
}

func copyFile(src, out int, name, p string) error {
	sfd, err := unix.Openat(src, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	in := os.NewFile(uintptr(sfd), p)
	defer in.Close()
	ofd, err := unix.Openat(out, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	o := os.NewFile(uintptr(ofd), p)
	defer o.Close()
	if _, err := io.Copy(o, in); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return copyMeta(sfd, ofd, p)
}

// copyMeta gives the copy out the owner (shifted into the storage range) and the permission bits
// of src, without setuid and setgid.
func copyMeta(src, out int, p string) error {
	var st unix.Stat_t
	if err := unix.Fstat(src, &st); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if err := chownStorage(out, "", &st); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if err := unix.Fchmod(out, st.Mode&0o1777); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

// chownStorage owns name in dir (dir itself when name is "") as the storage range's counterpart
// of st's owner; an id outside the image range becomes the range's nobody.
func chownStorage(dir int, name string, st *unix.Stat_t) error {
	shift := func(id uint32) int {
		if id >= 65536 {
			id = 65534
		}
		return int(sandbox.StorageIDBase + id)
	}
	flags := unix.AT_SYMLINK_NOFOLLOW
	if name == "" {
		flags |= unix.AT_EMPTY_PATH
	}
	return unix.Fchownat(dir, name, shift(st.Uid), shift(st.Gid), flags)
}
