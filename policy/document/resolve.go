package document

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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
		next := filepath.Join(cur, comp)
		fi, err := os.Lstat(next)
		if errors.Is(err, fs.ErrNotExist) {
			return filepath.Join(append([]string{next}, rest...)...), nil
		}
		if err != nil {
			return "", fmt.Errorf("resolve %q: %w", p, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
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
