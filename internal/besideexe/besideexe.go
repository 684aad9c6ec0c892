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
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil || !filepath.IsAbs(exe) {
		return -1, "", st, fmt.Errorf("%s: own binary: %q %v", name, exe, err)
	}
	path = filepath.Join(filepath.Dir(exe), name)
	fd, err = unix.Open(path, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, path, st, fmt.Errorf("%s (install it beside %s): %w", path, exe, err)
	}
	var own unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &own); err != nil {
		unix.Close(fd)
		return -1, path, st, fmt.Errorf("stat own binary: %w", err)
	}
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, path, st, fmt.Errorf("stat %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Uid != own.Uid || st.Mode&0o022 != 0 || st.Mode&0o100 == 0 {
		unix.Close(fd)
		return -1, path, st, fmt.Errorf("%s is not a regular executable file of the running binary's owner that no one else may write", path)
	}
	return fd, path, st, nil
}
