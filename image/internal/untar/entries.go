package untar

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

func (x *extractor) mkdir(pfd int, name, base string, hdr *tar.Header) error {
	if err := x.clear(pfd, base, true); err != nil {
		return fmt.Errorf("%s: replace: %w", name, err)
	}
	if err := unix.Mkdirat(pfd, base, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("%s: mkdir: %w", name, err)
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: open directory: %w", name, err)
	}
	defer unix.Close(fd)
	if err := x.meta(fd, name, hdr); err != nil {
		return err
	}
	x.dirs = append(x.dirs, dirTimes{path: name, ts: times(hdr)})
	return nil
}

func (x *extractor) file(pfd int, name, base string, hdr *tar.Header, r io.Reader) error {
	if hdr.Size < 0 {
		return fmt.Errorf("%s: %w: negative size", name, ErrUnsupported)
	}
	if err := x.clear(pfd, base, false); err != nil {
		return fmt.Errorf("%s: replace: %w", name, err)
	}
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("%s: create: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	// A sparse entry's holes are read as zeros (archive/tar does not export its sparse map) and
	// count against MaxBytes like any content; on disk they become holes again.
	w := &holeWriter{f: f, budget: x.opts.MaxBytes - x.rep.Bytes}
	n, err := io.CopyBuffer(w, r, x.buf)
	x.rep.Bytes += w.data
	if errors.Is(err, errBudget) {
		return fmt.Errorf("%s: %w: more than %d bytes of content", name, ErrLimit, x.opts.MaxBytes)
	}
	if err != nil {
		return fmt.Errorf("%s: write: %w", name, err)
	}
	if n != hdr.Size {
		return fmt.Errorf("%s: short content: %d of %d bytes", name, n, hdr.Size)
	}
	// A trailing hole (or trailing zeros) is never written: the size makes it.
	if err := f.Truncate(hdr.Size); err != nil {
		return fmt.Errorf("%s: set size: %w", name, err)
	}
	if err := x.meta(fd, name, hdr); err != nil {
		return err
	}
	return setTimes(pfd, base, hdr, name)
}

// holeBlock is the granularity of hole detection: the usual filesystem block size.
const holeBlock = 4096

var (
	zeroBlock = make([]byte, holeBlock)
	errBudget = errors.New("content budget exceeded")
)

// holeWriter writes a new regular file's content without allocating its all-zero blocks: Write
// skips every block-aligned run of zeros, so a sparse entry or a run of zeros stays a hole on
// disk (the archive bomb of a 1 GiB sparse file, or a gzip of 1 GiB of zeros, occupies no
// blocks). Skipped ranges read back as zeros: the file was created empty, and the caller sets
// its size. It has no ReadFrom, so io.CopyBuffer uses the extractor's buffer.
type holeWriter struct {
	f      *os.File
	off    int64 // the offset of the next byte
	data   int64 // bytes received through Write
	budget int64 // how many bytes Write may receive in all
}

func (w *holeWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > w.budget-w.data {
		return 0, errBudget
	}
	w.data += int64(len(p))
	written := 0
	for written < len(p) {
		// Find the next run of blocks that are not all zero, in block-aligned file chunks.
		start := written
		for start < len(p) {
			c := chunk(w.off+int64(start), len(p)-start)
			if !bytes.Equal(p[start:start+c], zeroBlock[:c]) {
				break
			}
			start += c
		}
		end := start
		for end < len(p) {
			c := chunk(w.off+int64(end), len(p)-end)
			if bytes.Equal(p[end:end+c], zeroBlock[:c]) {
				break
			}
			end += c
		}
		if end > start {
			if _, err := w.f.WriteAt(p[start:end], w.off+int64(start)); err != nil {
				return written, err
			}
		}
		written = end
	}
	w.off += int64(len(p))
	return len(p), nil
}

// chunk is the length of the piece of n bytes at file offset off that ends at the next block
// boundary.
func chunk(off int64, n int) int {
	return min(n, holeBlock-int(off%holeBlock))
}

func (x *extractor) symlink(pfd int, name, base string, hdr *tar.Header) error {
	if hdr.Linkname == "" || strings.IndexByte(hdr.Linkname, 0) >= 0 {
		return fmt.Errorf("%s: %w: empty or NUL symlink target", name, ErrUnsupported)
	}
	if err := x.clear(pfd, base, false); err != nil {
		return fmt.Errorf("%s: replace: %w", name, err)
	}
	// The target is stored verbatim and never followed here; at run time it resolves inside the
	// container's root, where an absolute target is harmless.
	if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
		return fmt.Errorf("%s: symlink: %w", name, err)
	}
	if x.opts.Chown {
		if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("%s: lchown: %w", name, err)
		}
	}
	return setTimes(pfd, base, hdr, name)
}

func (x *extractor) hardlink(pfd int, name, base string, hdr *tar.Header) error {
	target, err := CleanName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("%s: %w: %w", name, ErrHardlink, err)
	}
	if target == "" || target == name {
		return fmt.Errorf("%s: %w: target %q", name, ErrHardlink, hdr.Linkname)
	}
	tdir, tbase := split(target)
	tfd := x.root
	if tdir != "" {
		// Not via the cache: openParent may reuse the descriptor we hold as pfd.
		tfd, err = x.resolveDir(tdir, false)
		if err != nil {
			return fmt.Errorf("%s: %w: %w", name, ErrHardlink, err)
		}
		defer unix.Close(tfd)
	}
	var st unix.Stat_t
	if err := unix.Fstatat(tfd, tbase, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("%s: %w: target %q: %w", name, ErrHardlink, hdr.Linkname, err)
	}
	if m := st.Mode & unix.S_IFMT; m != unix.S_IFREG && m != unix.S_IFLNK {
		return fmt.Errorf("%s: %w: target %q is not a regular file", name, ErrHardlink, hdr.Linkname)
	}
	if err := x.clear(pfd, base, false); err != nil {
		return fmt.Errorf("%s: replace: %w", name, err)
	}
	// Flags 0: linkat does not follow a symlink target, so the link is to the entry itself.
	if err := unix.Linkat(tfd, tbase, pfd, base, 0); err != nil {
		return fmt.Errorf("%s: link to %q: %w", name, hdr.Linkname, err)
	}
	return nil
}

// whiteout records an OCI whiteout in overlayfs form.
func (x *extractor) whiteout(pfd int, dir, base string) error {
	if base == whOpaque {
		// Both namespaces: the mount may be made with or without userxattr (inside a user
		// namespace overlayfs reads user.overlay.*).
		for _, attr := range []string{"trusted.overlay.opaque", "user.overlay.opaque"} {
			if err := unix.Fsetxattr(pfd, attr, []byte("y"), 0); err != nil {
				return fmt.Errorf("%s: mark opaque (%s): %w", dir, attr, err)
			}
		}
		x.rep.OpaqueDirs++
		return nil
	}
	target := strings.TrimPrefix(base, whPrefix)
	if target == "" || target == "." || target == ".." || strings.HasPrefix(target, whPrefix) {
		return fmt.Errorf("%s/%s: %w: malformed whiteout", dir, base, ErrUnsupported)
	}
	if err := x.clear(pfd, target, false); err != nil {
		return fmt.Errorf("%s/%s: replace: %w", dir, target, err)
	}
	if err := unix.Mknodat(pfd, target, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("%s/%s: create whiteout: %w", dir, target, err)
	}
	x.rep.Whiteouts++
	return nil
}

// meta applies owner, mode and extended attributes to an open file or directory.
func (x *extractor) meta(fd int, name string, hdr *tar.Header) error {
	if x.opts.Chown {
		if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
			return fmt.Errorf("%s: chown: %w", name, err)
		}
	}
	mode := uint32(hdr.Mode) & 0o7777
	if mode&(unix.S_ISUID|unix.S_ISGID) != 0 && !x.opts.KeepSetuid && hdr.Typeflag != tar.TypeDir {
		mode &^= unix.S_ISUID | unix.S_ISGID
		x.rep.StrippedSetuid = append(x.rep.StrippedSetuid, name)
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return fmt.Errorf("%s: chmod: %w", name, err)
	}
	keys := make([]string, 0, len(hdr.PAXRecords))
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "SCHILY.xattr.") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		attr := strings.TrimPrefix(k, "SCHILY.xattr.")
		if !x.opts.AllowXattr(attr) {
			x.rep.DroppedXattrs = append(x.rep.DroppedXattrs, name+": "+attr)
			continue
		}
		if err := unix.Fsetxattr(fd, attr, []byte(hdr.PAXRecords[k]), 0); err != nil {
			return fmt.Errorf("%s: set xattr %s: %w", name, attr, err)
		}
	}
	return nil
}

func times(hdr *tar.Header) [2]unix.Timespec {
	at := hdr.AccessTime
	if at.IsZero() {
		at = hdr.ModTime
	}
	return [2]unix.Timespec{unix.NsecToTimespec(at.UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
}

func setTimes(pfd int, base string, hdr *tar.Header, name string) error {
	ts := times(hdr)
	if err := unix.UtimesNanoAt(pfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("%s: set times: %w", name, err)
	}
	return nil
}

// finishDirs sets directory times deepest first, after all content is in place.
func (x *extractor) finishDirs() error {
	for i := len(x.dirs) - 1; i >= 0; i-- {
		d := x.dirs[i]
		dir, base := split(d.path)
		pfd := x.root
		if dir != "" {
			fd, err := x.resolveDir(dir, false)
			if errors.Is(err, unix.ENOENT) || errors.Is(err, ErrSymlinkPath) || errors.Is(err, ErrUnsupported) {
				continue // replaced by a later entry
			}
			if err != nil {
				return err
			}
			pfd = fd
		}
		err := unix.UtimesNanoAt(pfd, base, d.ts[:], unix.AT_SYMLINK_NOFOLLOW)
		if pfd != x.root {
			unix.Close(pfd)
		}
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("%s: set times: %w", d.path, err)
		}
	}
	return nil
}
