// Package ownfile reads the small records a process keeps for itself in its state (a verified
// blob's stamp, a trust client's record), trusting one only if it is the process's user's own
// private regular file.
package ownfile

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Read returns the content of path if it is a regular file of this user, with no permission for
// group or others, of at most max bytes; else (missing, a symlink, a fifo, another owner, too
// large, unreadable) nil.
func Read(path string, max int64) []byte {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG ||
		st.Uid != uint32(os.Geteuid()) || st.Mode&0o077 != 0 || st.Size > max {
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(f, max))
	if err != nil {
		return nil
	}
	return b
}
