package document

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// maxSymlinks bounds link following, as the kernel's ELOOP limit does.
const maxSymlinks = 40

// ResolveHostPath returns the host path a bind mount of p would really reach: symlinks are
// followed and ".." applied component by component, in the kernel's order (a lexical Clean
// first would be wrong: "/srv/link/../etc" with link -> /var/x is /var/etc, not /srv/etc).
// A missing tail is kept lexically (nothing there can be a symlink yet); a dangling symlink is
// an error, since what it points to could be created after the decision.
//
// Policy judges the resolved path; the runtime must mount that same resolved path (not the
// original spelling) so a link swapped after the decision cannot redirect the mount.
func ResolveHostPath(p string) (string, error) {
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("resolve %q: host path is not absolute", p)
	}
	rest := strings.Split(p, "/")
	cur := "/"
	links := 0
	for len(rest) > 0 {
		comp := rest[0]
		rest = rest[1:]
		switch comp {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		// cur is clean and absolute, comp a plain name: filepath.Join(cur, comp), without its
		// Clean and allocation on every component.
		next := cur + "/" + comp
		if cur == "/" {
			next = "/" + comp
		}
		// A stat into this frame, not os.Lstat's FileInfo on the heap: the state root is
		// resolved on every bulwark-runc start.
		var st unix.Stat_t
		err := unix.Lstat(next, &st)
		for err == unix.EINTR {
			err = unix.Lstat(next, &st)
		}
		if errors.Is(err, fs.ErrNotExist) {
			return filepath.Join(append([]string{next}, rest...)...), nil
		}
		if err != nil {
			return "", fmt.Errorf("resolve %q: %w", p, &fs.PathError{Op: "lstat", Path: next, Err: err})
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			cur = next
			continue
		}
		if links++; links > maxSymlinks {
			return "", fmt.Errorf("resolve %q: too many levels of symbolic links", p)
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", fmt.Errorf("resolve %q: %w", p, err)
		}
		if _, err := os.Stat(next); errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("resolve %q: %s is a dangling symlink to %q", p, next, target)
		}
		if filepath.IsAbs(target) {
			cur = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return cur, nil
}
