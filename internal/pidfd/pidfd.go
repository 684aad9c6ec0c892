// Package pidfd waits on processes through their pidfds.
package pidfd

import (
	"os"

	"golang.org/x/sys/unix"
)

// WaitExit blocks until the process pidfd names has exited (its pidfd reads as ready), in the
// runtime's poller rather than on a thread of its own: pidfd must be non-blocking
// (PIDFD_NONBLOCK), as os.NewFile then registers it with the poller. It returns at once if the
// descriptor cannot be polled.
func WaitExit(pidfd *os.File) {
	rc, err := pidfd.SyscallConn()
	if err != nil {
		return
	}
	rc.Read(func(fd uintptr) bool {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
		return err != nil || n > 0
	})
}
