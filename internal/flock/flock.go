// Package flock takes advisory flock(2) locks, retrying a call a signal interrupted: every
// lock file and locked directory of the state root goes through it.
package flock

import (
	"errors"

	"golang.org/x/sys/unix"
)

// Lock applies how (unix.LOCK_SH, LOCK_EX or LOCK_UN, optionally |LOCK_NB) to fd, again while
// the call is interrupted (EINTR); a held lock under LOCK_NB is unix.EWOULDBLOCK.
func Lock(fd, how int) error {
	for {
		if err := unix.Flock(fd, how); !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
