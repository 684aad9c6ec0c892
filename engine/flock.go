package engine

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/plainfile"
)

// flockFile takes an exclusive flock on p (created if missing); the returned func releases it.
func flockFile(p string) (func(), error) {
	f, err := plainfile.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", p, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	return func() { f.Close() }, nil
}

// lockFile is flockFile with the lock's kind (unix.LOCK_SH or LOCK_EX, optionally |LOCK_NB); ok
// is false when LOCK_NB found it held.
func lockFile(p string, how int) (unlock func(), ok bool, err error) {
	f, err := plainfile.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("open lock %s: %w", p, err)
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("lock %s: %w", p, err)
	}
	return func() { f.Close() }, true, nil
}
