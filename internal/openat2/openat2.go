// Package openat2 opens paths with openat2(2), retrying the transient errors the kernel returns
// when a walk confined by RESOLVE_IN_ROOT or RESOLVE_BENEATH raced a rename or a mount.
package openat2

import (
	"errors"

	"golang.org/x/sys/unix"
)

// retries bounds the loop: each EAGAIN means a rename or mount somewhere on the host overlapped
// the walk (the kernel cannot then prove ".." stayed inside the root). Under load that happens
// now and then; a path renamed without pause ends in the error, not in a hang.
const retries = 128

// Open is unix.Openat2, retried on EAGAIN and EINTR.
func Open(dirfd int, path string, how *unix.OpenHow) (int, error) {
	for i := 0; ; i++ {
		fd, err := unix.Openat2(dirfd, path, how)
		if i < retries && (errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR)) {
			continue
		}
		return fd, err
	}
}
