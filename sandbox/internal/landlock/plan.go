package landlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/openat2"
)

// Grant is one path-beneath rule: Access to Path and everything below it.
type Grant struct {
	Path   string
	Access Access
}

// devices are the device files a container may read and write (the floor's minimal /dev); the
// terminals also get IOCTL_DEV, which job control and line editing need.
var devices = []struct {
	path     string
	terminal bool
}{
	{"/dev/null", false}, {"/dev/zero", false}, {"/dev/full", false},
	{"/dev/random", false}, {"/dev/urandom", false},
	{"/dev/tty", true}, {"/dev/ptmx", true}, {"/dev/console", true}, {"/dev/pts", true},
}

// neverExec are trees nothing should execute from even though they are not writable mounts:
// kernel filesystems and device nodes. (A memfd executed through /proc/self/fd is invisible to
// Landlock since it lives on an internal mount, and seccomp allows memfd_create: the runtime sets
// vm.memfd_noexec to 2 in the container's pid namespace, or refuses memfd_create where the kernel
// has no such knob; see sandbox/internal/memfdnoexec.)
var neverExec = []string{"/proc", "/sys", "/dev"}

// Plan computes the filesystem grants for r: read everywhere under the root, write (no execute,
// no device creation) on each writable mount, device access on the minimal /dev set, and execute
// on every part of the root that contains no writable mount. Landlock rights are inherited down
// the tree, so EXECUTE cannot be granted on "/" when /tmp is writable: Plan grants it on each
// subtree or file that holds no writable mount, recursing into the directories that do (W^X).
func Plan(r Rules) ([]Grant, error) {
	if r.Root == "" {
		return nil, fmt.Errorf("landlock rules: empty root")
	}
	root := filepath.Clean(r.Root)
	if err := checkReal(root, root); err != nil {
		return nil, err
	}
	grants := []Grant{{Path: root, Access: fsRead}}
	if r.WritableRoot {
		grants[0].Access |= fsWrite
	}

	noExec := make([]string, 0, len(r.Writable)+len(neverExec))
	for _, w := range r.Writable {
		p := join(root, w)
		if err := checkReal(root, p); err != nil {
			return nil, fmt.Errorf("writable mount: %w", err)
		}
		grants = append(grants, Grant{Path: p, Access: onFile(p, fsRead|fsWrite)})
		noExec = append(noExec, p)
	}
	for _, n := range neverExec {
		noExec = append(noExec, join(root, n))
	}
	// A writable mount granted exec gets it on itself only (it is left out of the wider grants
	// like any writable mount); rights are inherited, so nothing that must stay noexec may lie
	// below it.
	for _, w := range r.WritableExec {
		p := join(root, w)
		if err := checkReal(root, p); err != nil {
			return nil, fmt.Errorf("writable exec mount: %w", err)
		}
		for _, n := range noExec {
			if within(p, n) {
				return nil, fmt.Errorf("writable exec mount %s holds %s, which must not be executable", w, n)
			}
		}
		grants = append(grants, Grant{Path: p, Access: fsRead | fsWrite | fsExec})
	}
	for _, w := range r.WritableExec {
		noExec = append(noExec, join(root, w))
	}
	for _, d := range devices {
		p, ok, err := resolveDevice(root, join(root, d.path))
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		a := fsDevRW
		if d.terminal {
			a |= accessIoctlDev
		}
		if d.path == "/dev/pts" {
			a |= accessReadDir
		}
		grants = append(grants, Grant{Path: p, Access: a})
	}

	execs, err := execGrants(root, noExec)
	if err != nil {
		return nil, err
	}
	for _, p := range execs {
		grants = append(grants, Grant{Path: p, Access: fsExec})
	}
	return grants, nil
}

// onFile narrows a to the rights a regular file can carry when p is one (a writable bind of a
// file: CRI's /etc/hostname, kubelet's termination log): Landlock refuses directory rights on a
// file (EINVAL), which failed the container's start.
func onFile(p string, a Access) Access {
	if st, err := os.Stat(p); err == nil && !st.IsDir() {
		return a & fsFile
	}
	return a
}

// join resolves container path p under root lexically ("../" cannot climb above root).
func join(root, p string) string {
	return filepath.Join(root, filepath.Clean("/"+p))
}

// checkReal verifies that p exists and that no component of it is a symlink. Plan compares paths
// as strings to decide where execution is allowed; a symlinked writable mount path would make that
// comparison lie and could grant EXECUTE over a writable mount, so it is refused instead. openat2
// with RESOLVE_NO_SYMLINKS walks p refusing any symlink (ELOOP), which for a clean absolute path is
// exactly "the kernel's path of what p opens is p" — what the fallback (no openat2) compares, by
// reading an O_PATH descriptor's /proc/self/fd link. The walk costs one system call where the
// comparison costs three and a procfs lookup (for 15 paths, most of the Landlock step).
func checkReal(root, p string) error {
	fd, err := openNoSymlinks(p)
	switch {
	case err == nil:
		unix.Close(fd)
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.ENOSYS):
		real, rerr := realPath(p)
		if rerr != nil {
			return rerr
		}
		if real != p {
			return fmt.Errorf("%s resolves to %s: symlinks are not allowed in landlock paths", p, real)
		}
		if errors.Is(err, unix.ELOOP) {
			return fmt.Errorf("%s: symlinks are not allowed in landlock paths", p)
		}
	default:
		return fmt.Errorf("open %s: %w", p, err)
	}
	if !within(root, p) {
		return fmt.Errorf("%s is outside the root %s", p, root)
	}
	return nil
}

// openNoSymlinks opens p (O_PATH) only if no component of it is a symlink.
func openNoSymlinks(p string) (int, error) {
	return openat2.Open(unix.AT_FDCWD, p, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_SYMLINKS})
}

// realPath returns the kernel's path of what p opens, symlinks followed.
func realPath(p string) (string, error) {
	fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", p, err)
	}
	defer unix.Close(fd)
	real, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", p, err)
	}
	return real, nil
}

// resolveDevice returns where device path p really is, following a symlink (/dev/ptmx is often
// one to pts/ptmx) only if it stays inside root; ok is false when p is missing or leads outside,
// and then no rule is added: a missing grant only takes access away. A path with no symlink on it
// is its own real path (checkReal); only a symlinked one is resolved.
func resolveDevice(root, p string) (real string, ok bool, err error) {
	fd, err := openNoSymlinks(p)
	switch {
	case err == nil:
		unix.Close(fd)
		return p, within(root, p), nil
	case errors.Is(err, unix.ENOENT):
		return "", false, nil
	case !errors.Is(err, unix.ELOOP) && !errors.Is(err, unix.ENOSYS):
		return "", false, fmt.Errorf("open %s: %w", p, err)
	}
	if real, ok := plainLink(p); ok {
		return real, within(root, real), nil
	}
	real, err = realPath(p)
	if errors.Is(err, unix.ENOENT) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return real, within(root, real), nil
}

// plainLink resolves p when it is one symlink to a path with no symlink on it, in a directory
// with none either (the runtime's /dev/ptmx -> pts/ptmx): its target, read from the link and
// joined to p's directory when relative, is then the kernel's path of what p opens, which
// openNoSymlinks confirms. Anything else (a target with "..", whose lexical meaning a symlink
// could change, a chain of links, a symlinked directory) is not resolved here (ok false), and
// realPath's /proc/self/fd link answers instead; reading that link leaves the container's procfs
// an inode and a dentry for its fd directory and for the descriptor, cached for the container's
// whole life (issue 14).
func plainLink(p string) (real string, ok bool) {
	target, err := os.Readlink(p)
	if err != nil || target == "" || slices.Contains(strings.Split(target, "/"), "..") {
		return "", false
	}
	real = target
	if !filepath.IsAbs(target) {
		real = filepath.Join(filepath.Dir(p), target)
	}
	fd, err := openNoSymlinks(real)
	if err != nil {
		return "", false
	}
	unix.Close(fd)
	return real, true
}

// within reports whether p is dir or below it.
func within(dir, p string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// execGrants returns the largest subtrees and files under dir that contain none of noExec.
func execGrants(dir string, noExec []string) ([]string, error) {
	if slices.Contains(noExec, dir) {
		return nil, nil
	}
	if !slices.ContainsFunc(noExec, func(n string) bool { return within(dir, n) }) {
		return []string{dir}, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s for execute rules: %w", dir, err)
	}
	var out []string
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		switch t := e.Type(); {
		case t.IsDir():
			sub, err := execGrants(p, noExec)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
		case t.IsRegular():
			// A writable file (a bind of one) is never executable (W^X).
			if !slices.Contains(noExec, p) {
				out = append(out, p)
			}
		default:
			// Symlinks are skipped: their target gets its own rule where it really lives, and
			// opening them here would follow them (an absolute target resolves outside a root
			// that is not yet pivoted). Devices, sockets and fifos are never executable.
		}
	}
	return out, nil
}
