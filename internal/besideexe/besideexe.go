// Package besideexe opens a helper binary installed beside the running one (bulwark-policy beside
// bulwark and bulwark-runc, bulwark-admin beside bulwark), refusing one that anyone but the
// running binary's owner could have written: whoever could replace it would act as its caller.
package besideexe

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Open opens (O_PATH, close-on-exec) the file name beside the running binary and returns it with
// its path and stat. It must be a regular executable file of the running binary's owner that no
// one else may write. The caller executes it through the descriptor (/proc/self/fd/N), so what
// was checked is what runs.
func Open(name string) (fd int, path string, st unix.Stat_t, err error) {
	exe, path, own, err := locate(name)
	if err != nil {
		return -1, path, st, err
	}
	fd, err = unix.Open(path, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, path, st, fmt.Errorf("%s (install it beside %s): %w", path, exe, err)
	}
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, path, st, fmt.Errorf("stat %s: %w", path, err)
	}
	if err := check(path, &st, &own); err != nil {
		unix.Close(fd)
		return -1, path, st, err
	}
	return fd, path, st, nil
}

// Stat is Open for a caller that only identifies the file, by its stat, before it executes it:
// the same checks on the same file (a symlink is not followed), with one system call instead of
// an open, a stat and a close. Whoever executes it later opens it (Open) and compares. own is
// the running binary's stat the checks compared with.
func Stat(name string) (path string, st, own unix.Stat_t, err error) {
	exe, path, own, err := locate(name)
	if err != nil {
		return path, st, own, err
	}
	if err := unix.Lstat(path, &st); err != nil {
		return path, st, own, fmt.Errorf("%s (install it beside %s): %w", path, exe, err)
	}
	return path, st, own, check(path, &st, &own)
}

// locate is the running binary's path (exe) and stat (own), and the path of name beside it.
func locate(name string) (exe, path string, own unix.Stat_t, err error) {
	exe, err = os.Readlink("/proc/self/exe")
	if err != nil || !filepath.IsAbs(exe) {
		return exe, "", own, fmt.Errorf("%s: own binary: %q %v", name, exe, err)
	}
	path = filepath.Join(filepath.Dir(exe), name)
	if err := unix.Stat("/proc/self/exe", &own); err != nil {
		return exe, path, own, fmt.Errorf("stat own binary: %w", err)
	}
	return exe, path, own, nil
}

// check refuses st, the file at path, unless it is a regular executable file of own's owner
// that no one else may write.
func check(path string, st, own *unix.Stat_t) error {
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Uid != own.Uid || st.Mode&0o022 != 0 || st.Mode&0o100 == 0 {
		return fmt.Errorf("%s is not a regular executable file of the running binary's owner that no one else may write", path)
	}
	return nil
}
