// Package du measures the disk space a directory tree takes, as du -x does: the blocks allocated
// (a sparse file counts what it uses), each inode once however many links it has, symlinks never
// followed, on the tree's own filesystem only (a sized volume's filesystem, loop-mounted on its
// _data, is counted as its image file).
package du

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

type inode struct{ dev, ino uint64 }

// Counter sums trees; an inode it has counted (a hardlink, or a layer two images share) is not
// counted again by the same Counter.
type Counter struct {
	seen map[inode]bool
}

// New returns a Counter that has counted nothing.
func New() *Counter { return &Counter{seen: map[inode]bool{}} }

// Size returns the bytes allocated to dir and everything below it not counted before; a missing
// dir is 0, and an entry removed during the walk is skipped.
func (c *Counter) Size(dir string) (int64, error) {
	var total int64
	dev, first := uint64(0), true
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		info, err := d.Info() // lstat: a symlink is measured, never followed
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no inode information", p)
		}
		if first {
			dev, first = uint64(st.Dev), false
		} else if uint64(st.Dev) != dev {
			if d.IsDir() {
				return fs.SkipDir // a mount: another filesystem
			}
			return nil
		}
		key := inode{uint64(st.Dev), st.Ino}
		if c.seen[key] {
			return nil
		}
		c.seen[key] = true
		total += st.Blocks * 512
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("disk usage of %s: %w", dir, err)
	}
	return total, nil
}

// Size is New().Size(dir).
func Size(dir string) (int64, error) {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	return New().Size(dir)
}
