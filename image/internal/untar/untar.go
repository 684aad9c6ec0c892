// Package untar extracts a tar stream (an OCI layer or an image archive) into a directory so that
// no entry, however hostile, can create, modify or follow anything outside that directory.
//
// Every path is resolved component by component with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS)
// from a descriptor of the destination, and every change is made with an *at system call on the
// final component, so neither ".." nor a symlink planted by an earlier entry (or by a racing
// writer) can redirect a write. Lessons defended here: CVE-2018-15664 and CVE-2019-14271 (docker cp
// following symlinks out of the root), CVE-2021-30465 (runc mount target swapped by a symlink),
// CVE-2024-21626-style escapes through path re-resolution, and the classic tar-slip (CVE-2018-1002200).
package untar

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/openat2"
)

// Errors describing why an archive was refused; every refusal wraps exactly one of them.
var (
	ErrTraversal   = errors.New("path escapes the destination")
	ErrSymlinkPath = errors.New("path goes through a symlink")
	ErrHardlink    = errors.New("hardlink target is not a file inside the layer")
	ErrDevice      = errors.New("device nodes and fifos are not allowed")
	ErrLimit       = errors.New("archive exceeds limit")
	ErrUnsupported = errors.New("unsupported tar entry")
)

// WhiteoutMode says what ".wh." entries mean.
type WhiteoutMode int

const (
	// WhiteoutOverlay converts OCI whiteouts into overlayfs form: a 0/0 character device for a
	// removed path and the trusted.overlay.opaque="y" xattr for an opaque directory.
	WhiteoutOverlay WhiteoutMode = iota
	// WhiteoutPlain extracts ".wh." names as ordinary files (for image archives, which have none).
	WhiteoutPlain
)

// Defaults for the limits against decompression bombs.
const (
	DefaultMaxBytes   = 16 << 30
	DefaultMaxEntries = 1 << 20
)

// Options controls extraction. The zero value is the safe default for a layer.
type Options struct {
	// MaxBytes bounds the files' content (a sparse entry's holes included: they are read as
	// zeros, though never written to disk); 0 means DefaultMaxBytes.
	MaxBytes   int64
	MaxEntries int // number of tar entries; 0 means DefaultMaxEntries
	// Chown applies the archive's uid/gid (needs CAP_CHOWN). Off, files belong to the extractor.
	Chown bool
	// KeepSetuid keeps setuid/setgid bits; by default they are stripped and recorded.
	KeepSetuid bool
	Whiteouts  WhiteoutMode
	// AllowXattr decides which extended attributes are kept; nil means DefaultAllowXattr.
	AllowXattr func(name string) bool
	// DropDevSpecials skips (and records) device nodes and fifos under dev/, which a sandbox
	// covers with its own /dev; one anywhere else is refused all the same.
	DropDevSpecials bool
}

// Report records what extraction changed relative to the archive.
type Report struct {
	Entries int `json:"entries"`
	// Bytes is the files' content (holes included); zero blocks of it are left unallocated.
	Bytes          int64    `json:"bytes"`
	StrippedSetuid []string `json:"strippedSetuid,omitempty"`
	DroppedXattrs  []string `json:"droppedXattrs,omitempty"`
	Whiteouts      int      `json:"whiteouts,omitempty"`
	DroppedDevices []string `json:"droppedDevices,omitempty"`
	OpaqueDirs     int      `json:"opaqueDirs,omitempty"`
}

// DefaultAllowXattr keeps "user.*" except "user.overlay.*". Dropped (and recorded) are
// security.capability (file capabilities are setuid by another name), security.selinux,
// trusted.* and user.overlay.*: overlayfs trusts trusted.overlay.* (and user.overlay.* on
// userxattr mounts) for redirects, metacopy and opacity, so a layer must never bring its own.
func DefaultAllowXattr(name string) bool {
	return strings.HasPrefix(name, "user.") && !strings.HasPrefix(name, "user.overlay.")
}

const (
	whPrefix = ".wh."
	whOpaque = ".wh..wh..opq"
)

// Extract reads the tar stream r into the existing directory dir.
func Extract(r io.Reader, dir string, opts Options) (*Report, error) {
	if opts.MaxBytes == 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.MaxEntries == 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	if opts.AllowXattr == nil {
		opts.AllowXattr = DefaultAllowXattr
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("open destination %s: %w", dir, err)
	}
	x := &extractor{root: fd, opts: opts, rep: &Report{}, buf: make([]byte, 256<<10), parentFD: -1}
	defer x.close()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return x.rep, fmt.Errorf("read tar header: %w", err)
		}
		x.rep.Entries++
		if x.rep.Entries > opts.MaxEntries {
			return x.rep, fmt.Errorf("%w: more than %d entries", ErrLimit, opts.MaxEntries)
		}
		if err := x.entry(hdr, tr); err != nil {
			return x.rep, err
		}
	}
	if err := x.finishDirs(); err != nil {
		return x.rep, err
	}
	return x.rep, nil
}

type dirTimes struct {
	path string
	ts   [2]unix.Timespec
}

type extractor struct {
	root int
	opts Options
	rep  *Report
	buf  []byte
	// A one-entry cache of the last parent directory: tar entries come grouped by directory.
	parent   string
	parentFD int
	dirs     []dirTimes // directory times are set last, since later entries change them
}

func (x *extractor) close() {
	if x.parentFD >= 0 {
		unix.Close(x.parentFD)
	}
	unix.Close(x.root)
}

// CleanName turns an archive name into a relative path with no "." or empty components. Any ".."
// component is refused outright rather than resolved: a layer has no reason to contain one.
func CleanName(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("%w: NUL in name %q", ErrTraversal, name)
	}
	parts := strings.Split(name, "/")
	kept := parts[:0]
	for _, p := range parts {
		switch p {
		case "", ".":
			continue
		case "..":
			return "", fmt.Errorf("%w: %q", ErrTraversal, name)
		}
		kept = append(kept, p)
	}
	return strings.Join(kept, "/"), nil
}

func split(p string) (dir, base string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

func (x *extractor) entry(hdr *tar.Header, r io.Reader) error {
	name, err := CleanName(hdr.Name)
	if err != nil {
		return err
	}
	if name == "" {
		// The archive's own root ("./"): its metadata is the layer directory's, which we own.
		if hdr.Typeflag == tar.TypeDir {
			return nil
		}
		return fmt.Errorf("%w: non-directory entry for the root %q", ErrUnsupported, hdr.Name)
	}
	dir, base := split(name)
	pfd, err := x.openParent(dir)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if x.opts.Whiteouts == WhiteoutOverlay && strings.HasPrefix(base, whPrefix) {
		return x.whiteout(pfd, dir, base)
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return x.mkdir(pfd, name, base, hdr)
	case tar.TypeReg, tar.TypeGNUSparse: // tar.Reader already turned legacy TypeRegA into TypeReg or TypeDir
		return x.file(pfd, name, base, hdr, r)
	case tar.TypeSymlink:
		return x.symlink(pfd, name, base, hdr)
	case tar.TypeLink:
		return x.hardlink(pfd, name, base, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		if x.opts.DropDevSpecials && strings.HasPrefix(name, "dev/") {
			x.rep.DroppedDevices = append(x.rep.DroppedDevices, name)
			return nil
		}
		return fmt.Errorf("%s: %w", name, ErrDevice)
	default:
		return fmt.Errorf("%s: %w: type %q", name, ErrUnsupported, hdr.Typeflag)
	}
}

const resolveFlags = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

// openParent returns a descriptor of dir (relative to the root), creating missing directories
// with mode 0755 as other extractors do. The descriptor is owned by the cache; do not close it.
func (x *extractor) openParent(dir string) (int, error) {
	if dir == "" {
		return x.root, nil
	}
	if x.parentFD >= 0 && x.parent == dir {
		return x.parentFD, nil
	}
	fd, err := x.resolveDir(dir, true)
	if err != nil {
		return -1, err
	}
	if x.parentFD >= 0 {
		unix.Close(x.parentFD)
	}
	x.parent, x.parentFD = dir, fd
	return fd, nil
}

// resolveDir opens dir beneath the root without following any symlink; with create it makes
// missing components.
func (x *extractor) resolveDir(dir string, create bool) (int, error) {
	how := &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: resolveFlags}
	fd, err := openat2.Open(x.root, dir, how)
	if err == nil {
		return fd, nil
	}
	if !errors.Is(err, unix.ENOENT) || !create {
		return -1, resolveErr(dir, err)
	}
	// Walk and create one component at a time.
	cur, err := unix.Dup(x.root)
	if err != nil {
		return -1, err
	}
	for _, c := range strings.Split(dir, "/") {
		if err := unix.Mkdirat(cur, c, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			unix.Close(cur)
			return -1, fmt.Errorf("mkdir %s: %w", c, err)
		}
		next, err := openat2.Open(cur, c, how)
		unix.Close(cur)
		if err != nil {
			return -1, resolveErr(dir, err)
		}
		cur = next
	}
	return cur, nil
}

func resolveErr(p string, err error) error {
	switch {
	case errors.Is(err, unix.ELOOP):
		return fmt.Errorf("%w: %s", ErrSymlinkPath, p)
	case errors.Is(err, unix.EXDEV):
		return fmt.Errorf("%w: %s", ErrTraversal, p)
	case errors.Is(err, unix.ENOTDIR):
		return fmt.Errorf("%w: %s: a component is not a directory", ErrUnsupported, p)
	}
	return fmt.Errorf("open %s: %w", p, err)
}

// clear removes whatever exists at base so a later entry replaces an earlier one, as tar
// semantics require; keepDir leaves an existing directory in place for a directory entry.
func (x *extractor) clear(pfd int, base string, keepDir bool) error {
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return unix.Unlinkat(pfd, base, 0)
	}
	if keepDir {
		return nil
	}
	// The cached parent may live under the directory being removed.
	if x.parentFD >= 0 && x.parentFD != pfd {
		unix.Close(x.parentFD)
		x.parentFD, x.parent = -1, ""
	}
	return removeAllAt(pfd, base)
}

// removeAllAt removes base (a directory) below pfd without following symlinks.
func removeAllAt(pfd int, base string) error {
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s for removal: %w", base, err)
	}
	f := os.NewFile(uintptr(fd), base)
	names, err := f.Readdirnames(-1)
	if err != nil {
		f.Close()
		return fmt.Errorf("list %s: %w", base, err)
	}
	for _, n := range names {
		if err := unix.Unlinkat(fd, n, 0); err != nil {
			if !errors.Is(err, unix.EISDIR) {
				f.Close()
				return fmt.Errorf("remove %s/%s: %w", base, n, err)
			}
			if err := removeAllAt(fd, n); err != nil {
				f.Close()
				return err
			}
		}
	}
	f.Close()
	return unix.Unlinkat(pfd, base, unix.AT_REMOVEDIR)
}
