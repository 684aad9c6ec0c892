// Package activation receives sockets passed by a service manager (systemd's socket-activation
// protocol, sd_listen_fds(3)): LISTEN_PID names the process the sockets are for, LISTEN_FDS how
// many follow descriptor 2 (3, 4, ...), and LISTEN_FDNAMES their colon-separated names (a
// .socket unit's FileDescriptorName=, else the unit's name). Nothing here depends on systemd
// being present: the protocol is the environment and the descriptors.
package activation

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ListenFDsStart is the first passed descriptor (SD_LISTEN_FDS_START).
const ListenFDsStart = 3

// The protocol's environment variables.
const (
	EnvPID   = "LISTEN_PID"
	EnvFDs   = "LISTEN_FDS"
	EnvNames = "LISTEN_FDNAMES"
)

// maxFDs bounds LISTEN_FDS: a daemon is handed a few sockets, never thousands.
const maxFDs = 64

// Listener is one passed socket with its name.
type Listener struct {
	Name string
	net.Listener
}

// Passed says how many descriptors the environment passes to process pid, and their names (""
// for a descriptor without one). None (0, nil, nil): no LISTEN_PID or LISTEN_FDS, or LISTEN_PID
// names another process (the variables were inherited, not meant for this one). Malformed
// variables are an error: a daemon told to take sockets it cannot read must not bind its own.
func Passed(pid int, getenv func(string) string) (int, []string, error) {
	ps, fs := getenv(EnvPID), getenv(EnvFDs)
	if ps == "" || fs == "" {
		return 0, nil, nil
	}
	p, err := strconv.Atoi(ps)
	if err != nil || p <= 0 {
		return 0, nil, fmt.Errorf("socket activation: %s=%q is not a process id", EnvPID, ps)
	}
	if p != pid {
		return 0, nil, nil
	}
	n, err := strconv.Atoi(fs)
	if err != nil || n < 0 || n > maxFDs {
		return 0, nil, fmt.Errorf("socket activation: %s=%q: want 0..%d descriptors", EnvFDs, fs, maxFDs)
	}
	names := make([]string, n)
	if ns := getenv(EnvNames); ns != "" {
		parts := strings.Split(ns, ":")
		if len(parts) != n {
			return 0, nil, fmt.Errorf("socket activation: %s names %d descriptors, %s passes %d", EnvNames, len(parts), EnvFDs, n)
		}
		copy(names, parts)
	}
	return n, names, nil
}

// Listeners takes the sockets passed to this process: each descriptor is checked to be a
// listening stream socket, made close-on-exec (the daemon's children never inherit them) and
// wrapped as a net.Listener; the protocol's variables are removed from the environment so
// children do not see them either. None passed: nil, nil.
func Listeners() ([]Listener, error) {
	n, names, err := Passed(os.Getpid(), os.Getenv)
	for _, v := range []string{EnvPID, EnvFDs, EnvNames} {
		os.Unsetenv(v)
	}
	if err != nil || n == 0 {
		return nil, err
	}
	var out []Listener
	fail := func(err error) ([]Listener, error) {
		for _, l := range out {
			l.Close()
		}
		return nil, err
	}
	for i := 0; i < n; i++ {
		fd := ListenFDsStart + i
		unix.CloseOnExec(fd)
		ln, err := listener(fd, names[i])
		if err != nil {
			return fail(fmt.Errorf("socket activation: descriptor %d (%q): %w", fd, names[i], err))
		}
		out = append(out, Listener{Name: names[i], Listener: ln})
	}
	return out, nil
}

// listener checks fd is a listening stream socket and wraps it (net.FileListener duplicates it;
// the original is closed).
func listener(fd int, name string) (net.Listener, error) {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return nil, fmt.Errorf("not a socket: %w", err)
	}
	if typ != unix.SOCK_STREAM {
		return nil, errors.New("not a stream socket (ListenStream= is required)")
	}
	acc, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	if err != nil || acc == 0 {
		return nil, errors.New("not a listening socket (Accept=no is required)")
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, err
	}
	return ln, nil
}

// EnvNotify names the service manager's notification socket (sd_notify(3)).
const EnvNotify = "NOTIFY_SOCKET"

// Notifier tells the service manager the daemon's state (READY=1, RELOADING=1, STOPPING=1).
// Without a manager it does nothing.
type Notifier struct{ addr string }

// NewNotifier takes NOTIFY_SOCKET from the environment (and removes it: the daemon's children
// are not the service's main process and must not speak for it).
func NewNotifier() Notifier {
	a := os.Getenv(EnvNotify)
	os.Unsetenv(EnvNotify)
	return Notifier{addr: a}
}

// Notify sends state, e.g. "READY=1"; an abstract socket is written "@name".
func (n Notifier) Notify(state string) error {
	if n.addr == "" {
		return nil
	}
	addr := n.addr
	if addr[0] == '@' {
		addr = "\x00" + addr[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("notify service manager: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("notify service manager: %w", err)
	}
	return nil
}
