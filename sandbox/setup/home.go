package setup

import (
	"bufio"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/openat2"
)

// Runs in the child, inside the container's root, before the process's user and confinement are
// applied.

// passwdMaxBytes bounds how much of the container's /etc/passwd is read.
const passwdMaxBytes = 4 << 20

// withHome returns env with HOME set as runc sets it when the process's environment has none: the
// home directory of uid in the container's /etc/passwd, "/" when there is no such entry (pip, git
// and psql need a HOME).
func withHome(env []string, uid uint32) []string {
	for _, e := range env {
		if strings.HasPrefix(e, "HOME=") {
			return env
		}
	}
	home := "/"
	if f := openPasswd(); f != nil {
		if h, ok := passwdHome(io.LimitReader(f, passwdMaxBytes), uid); ok {
			home = h
		}
		f.Close()
	}
	return append(env, "HOME="+home)
}

// openPasswd opens the container's /etc/passwd if it is a regular file. The image controls the
// path: it is resolved inside the root (RESOLVE_IN_ROOT, no /proc magic links), and opened
// non-blocking so a FIFO there cannot stall the container's start.
func openPasswd() *os.File {
	fd, err := openat2.Open(unix.AT_FDCWD, "/etc/passwd", &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil
	}
	return os.NewFile(uintptr(fd), "/etc/passwd")
}

// passwdHome returns the home field of the first passwd(5) entry for uid.
func passwdHome(r io.Reader, uid uint32) (string, bool) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 6 {
			continue
		}
		if n, err := strconv.ParseUint(f[2], 10, 32); err != nil || uint32(n) != uid {
			continue
		}
		if f[5] == "" {
			return "/", true
		}
		return f[5], true
	}
	return "", false
}
