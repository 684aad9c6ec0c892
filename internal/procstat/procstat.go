// Package procstat reads what the engine, the sandbox and the supervisor need to know of a process
// from /proc/<pid>/stat: a pid and its start time name one process for good (a pid alone may
// be recycled).
package procstat

import (
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// stat returns the fields of /proc/<pid>/stat after the command (the state, field 3, first), or
// nil if the process is gone.
func stat(pid int) []string {
	if pid <= 0 {
		return nil
	}
	b := read("/proc/" + strconv.Itoa(pid) + "/stat")
	if b == nil {
		return nil
	}
	// comm (field 2) may contain spaces and parentheses: split after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

// read returns the content of the proc file p (nil: unreadable), read with open, read and close
// alone: os.ReadFile's also tried to register the file with the runtime's poller (five fcntl
// and epoll calls, which fail for a proc file) and stat'ed it, twice the system calls of every
// look at a process, several of which are on a container's start path.
func read(p string) []byte {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer unix.Close(fd)
	// A stat line is about 300 bytes (comm is at most 16, each of the 50 numbers at most 20
	// digits): one read takes it whole; a longer file is read on.
	b := make([]byte, 0, 1024)
	for {
		n, err := unix.Read(fd, b[len(b):cap(b)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil
		}
		if n == 0 {
			return b
		}
		b = b[:len(b)+n]
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// field returns field n (1-based, as proc(5) numbers them; n ≥ 3) of f, or "".
func field(f []string, n int) string {
	if len(f) < n-2 {
		return ""
	}
	return f[n-3]
}

// StartTime returns field 22 (starttime) of /proc/<pid>/stat, or 0 if the process is gone.
func StartTime(pid int) uint64 {
	v, _ := strconv.ParseUint(field(stat(pid), 22), 10, 64)
	return v
}

// State returns the one-letter state of the process ("Z" for a zombie), or "" if it is gone.
func State(pid int) string {
	return field(stat(pid), 3)
}

// Parent returns the parent pid of pid (0 if it is gone).
func Parent(pid int) int {
	p, _ := strconv.Atoi(field(stat(pid), 4))
	return p
}

// Alive reports whether the process pid started at start still runs (a zombie does not).
func Alive(pid int, start uint64) bool {
	f := stat(pid)
	v, err := strconv.ParseUint(field(f, 22), 10, 64)
	return err == nil && v == start && field(f, 3) != "Z"
}

// ZombieStatus returns the wait status (waitpid's) of the process pid started at start while
// it is a zombie, exited and not yet collected by its parent (field 52, exit_code); ok is false
// otherwise.
func ZombieStatus(pid int, start uint64) (status int, ok bool) {
	f := stat(pid)
	v, err := strconv.ParseUint(field(f, 22), 10, 64)
	if err != nil || v != start || field(f, 3) != "Z" {
		return 0, false
	}
	status, err = strconv.Atoi(field(f, 52))
	return status, err == nil
}
