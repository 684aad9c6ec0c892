package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/daemon/activation"
	"bulwark.dev/bulwark/daemon/config"
)

// Where the daemon listens: the API's unix socket (made here, or passed by the service manager),
// the metrics socket and the mutual-TLS TCP listener when configured.

// Names a service manager gives passed sockets (FileDescriptorName= in the .socket unit); any
// other name is an API unix socket.
const (
	FDNameMetrics = "metrics"
	// FDNameTLS is a TCP socket served with the configuration's mutual TLS (tcp.cert, key and
	// client_ca; its address is the socket's).
	FDNameTLS = "tls"
)

// listeners are the sockets the daemon serves on.
type listeners struct {
	api     []net.Listener
	metrics net.Listener // nil: metrics are not served
	tls     bool         // l.api holds the mutual-TLS TCP listener
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
// configured ones; the metrics socket, when configured and not passed, is made either way. Passed sockets replace the configured paths: their mode and group are the
// .socket unit's. An API socket must be a unix socket (identity is SO_PEERCRED).
func (s *Server) listen() (*listeners, error) {
	passed, err := activation.Listeners()
	if err != nil {
		return nil, err
	}
	l := &listeners{}
	if len(passed) > 0 {
		err = s.takePassed(l, passed)
	} else {
		err = s.makeSockets(l)
	}
	// A configured metrics socket or TCP listener the service manager did not pass is made here.
	if err == nil && l.metrics == nil && s.cfg.MetricsSocket != "" {
		l.metrics, err = makeSocket(s.cfg.MetricsSocket, s.cfg.MetricsSocketGroup, 0o660)
	}
	if err == nil && !l.tls && s.cfg.TCP != nil {
		var tcp net.Listener
		if tcp, err = net.Listen("tcp", s.cfg.TCP.Address); err == nil {
			err = s.addTLS(l, tcp)
		} else {
			err = fmt.Errorf("TCP listener: %w", err)
		}
	}
	if err != nil {
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
			if l.metrics != nil {
				errs = append(errs, fmt.Errorf("socket activation: two %q sockets", FDNameMetrics))
			}
			l.metrics = p.Listener
		case FDNameTLS:
			if l.tls {
				errs = append(errs, fmt.Errorf("socket activation: two %q sockets", FDNameTLS))
			}
			if err := s.addTLS(l, p.Listener); err != nil {
				errs = append(errs, fmt.Errorf("socket activation: %w", err))
			}
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

// addTLS serves the API on the TCP listener ln with mutual TLS: the server's certificate, and a
// client certificate required and verified against the client CA in the handshake (a client
// without one never sends a request). HTTP/1.1 only: Docker's attach and exec streams hijack
// the connection.
func (s *Server) addTLS(l *listeners, ln net.Listener) error {
	if s.cfg.TCP == nil {
		ln.Close()
		return errors.New("a TCP listener needs the tcp configuration (cert, key, client_ca): TCP is served with mutual TLS only")
	}
	if ln.Addr().Network() != "tcp" {
		ln.Close()
		return fmt.Errorf("the TLS listener is %s, not TCP", ln.Addr().Network())
	}
	tc, err := serverTLS(s.cfg.TCP)
	if err != nil {
		ln.Close()
		return err
	}
	l.api, l.tls = append(l.api, tls.NewListener(ln, tc)), true
	return nil
}

func serverTLS(c *config.TCP) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.Cert, c.Key)
	if err != nil {
		return nil, fmt.Errorf("TCP listener: server certificate: %w", err)
	}
	pem, err := os.ReadFile(c.ClientCA)
	if err != nil {
		return nil, fmt.Errorf("TCP listener: client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("TCP listener: client CA %s: no PEM certificate", c.ClientCA)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
	}, nil
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
