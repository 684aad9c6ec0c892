package daemon

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/daemon/activation"
)

// Where the daemon listens: the API's unix socket (made here, or passed by the service manager),
// and the metrics socket when configured.

// Names a service manager gives passed sockets (FileDescriptorName= in the .socket unit); any
// other name is an API unix socket.
const (
	FDNameMetrics = "metrics"
)

// listeners are the sockets the daemon serves on.
type listeners struct {
	api     []net.Listener
	metrics net.Listener // nil: metrics are not served
}

// close closes every listener: a socket this daemon made is removed with it (net.Listen's
// unix listener unlinks its path); a passed one stays, the service manager's.
func (l *listeners) close() {
	for _, ln := range l.all() {
		ln.Close()
	}
}

func (l *listeners) all() []net.Listener {
	out := append([]net.Listener(nil), l.api...)
	if l.metrics != nil {
		out = append(out, l.metrics)
	}
	return out
}

// listen takes the sockets passed by a service manager (socket activation), or makes the
// configured ones. Passed sockets replace the configured paths: their mode and group are the
// .socket unit's. An API socket must be a unix socket (identity is SO_PEERCRED).
func (s *Server) listen() (*listeners, error) {
	passed, err := activation.Listeners()
	if err != nil {
		return nil, err
	}
	l := &listeners{}
	if len(passed) > 0 {
		if err := s.takePassed(l, passed); err != nil {
			l.close()
			return nil, err
		}
		return l, nil
	}
	if err := s.makeSockets(l); err != nil {
		l.close()
		return nil, err
	}
	return l, nil
}

func (s *Server) takePassed(l *listeners, passed []activation.Listener) error {
	var errs []error
	for _, p := range passed {
		switch p.Name {
		case FDNameMetrics:
			errs = append(errs, fmt.Errorf("socket activation: %q: metrics are not served yet", FDNameMetrics))
			l.metrics = p.Listener
		default:
			if p.Addr().Network() != "unix" {
				errs = append(errs, fmt.Errorf("socket activation: API socket %q is %s, not a unix socket (callers are identified by SO_PEERCRED)", p.Name, p.Addr().Network()))
			}
			l.api = append(l.api, p.Listener)
		}
	}
	if len(l.api) == 0 {
		errs = append(errs, errors.New("socket activation: no API socket passed"))
	}
	for _, p := range passed {
		s.log.Info("socket activated", "name", p.Name, "address", p.Addr().String())
	}
	return errors.Join(errs...)
}

func (s *Server) makeSockets(l *listeners) error {
	ln, err := makeSocket(s.cfg.Socket, s.cfg.SocketGroup, 0o660)
	if err != nil {
		return err
	}
	l.api = append(l.api, ln)
	return nil
}

// makeSocket makes a unix socket at path: stale socket removed, mode mode (no access for
// others ever), group group (name or number; "": root's). The directory is made 0755 if missing.
func makeSocket(path, group string, mode os.FileMode) (net.Listener, error) {
	gid := 0
	if group != "" {
		g, err := lookupGroup(group)
		if err != nil {
			return nil, err
		}
		gid = g
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("socket %s: exists and is not a socket", path)
		}
		os.Remove(path)
	}
	// The socket is born without group or other access (no window in which anyone may connect).
	old := unix.Umask(0o177)
	ln, err := net.Listen("unix", path)
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chown(path, 0, gid); err != nil {
		ln.Close()
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	return ln, nil
}

func lookupGroup(g string) (int, error) {
	if n, err := strconv.Atoi(g); err == nil {
		return n, nil
	}
	grp, err := user.LookupGroup(g)
	if err != nil {
		return 0, fmt.Errorf("socket group %q: %w", g, err)
	}
	return strconv.Atoi(grp.Gid)
}
