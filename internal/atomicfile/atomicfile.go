// Package atomicfile replaces a file's content all at once: a reader, or the machine after a
// crash, sees the old content or the new one, never a torn file.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/plainfile"
)

// Options says how the new file is made and how durable its installation must be.
type Options struct {
	// Perm is the file's mode; zero keeps the temporary file's 0600.
	Perm os.FileMode
	// Sync flushes the content before the rename, so a power cut cannot leave the name pointing
	// at an empty or partial file. Callers whose file is cheap to lose skip it (it costs ms).
	Sync bool
	// SyncDir also flushes the directory after the rename, so the new name itself survives.
	SyncDir bool
}

// Write replaces path with data.
func Write(path string, data []byte, o Options) error {
	return WriteFrom(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}, o)
}

// WriteFrom replaces path with what fill writes: to a temporary file in the same directory
// (".<stem>-*<ext>", so a reader listing the directory can tell it from the real one), renamed
// over path only if fill succeeds.
func WriteFrom(path string, fill func(io.Writer) error, o Options) error {
	dir, base := filepath.Split(path)
	ext := filepath.Ext(base)
	tmp, err := createTemp(dir, "."+strings.TrimSuffix(base, ext)+"-", ext)
	if err != nil {
		return err
	}
	if err := finish(tmp, fill, o); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	// rename(2) itself: os.Rename first looks the target up (a directory there makes it fail
	// with EEXIST rather than replace an empty one; a file renamed over a directory fails with
	// EISDIR anyway), one more system call of each record and state file written on a
	// container's start path, as removing the temporary name after it was renamed away was.
	if err := unix.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return &os.LinkError{Op: "rename", Old: tmp.Name(), New: path, Err: err}
	}
	if o.SyncDir {
		return SyncDir(filepath.Dir(path))
	}
	return nil
}

// createTemp is os.CreateTemp(dir, prefix+"*"+suffix) with a file that is not polled
// (plainfile): a random number between prefix and suffix, another on a name already taken.
func createTemp(dir, prefix, suffix string) (*os.File, error) {
	for range 10000 {
		name := filepath.Join(dir, prefix+strconv.FormatUint(uint64(rand.Uint32()), 10)+suffix)
		f, err := plainfile.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if !errors.Is(err, fs.ErrExist) {
			return f, err
		}
	}
	return nil, &os.PathError{Op: "createtemp", Path: filepath.Join(dir, prefix+"*"+suffix), Err: fs.ErrExist}
}

func finish(f *os.File, fill func(io.Writer) error, o Options) error {
	if err := fill(f); err != nil {
		return err
	}
	if o.Perm != 0 {
		if err := f.Chmod(o.Perm); err != nil {
			return err
		}
	}
	if o.Sync {
		return f.Sync()
	}
	return nil
}

// SyncDir flushes dir, making the names created or renamed in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
