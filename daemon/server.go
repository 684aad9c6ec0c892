// Package daemon is bulwarkd's API server: the Docker Engine API on a unix socket, for many
// tenants at once. The caller's tenant comes from the connection (SO_PEERCRED), every call is
// decided by the API policy (policy/api) with its target and the target's owner before anything
// is done, responses show a tenant only its own objects, names are per tenant, and containers
// are run through the engine (engine.Prepare, the detached monitor, the engine's logs and
// lifecycle operations) exactly as the daemonless CLI runs them.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/daemon/config"
	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/policy/api"
)

// Options are what a Server is built from; cmd/bulwarkd opens them.
type Options struct {
	Config config.Config
	Engine *engine.Engine
	// Audit is the state root's audit log (the one the engine appends to).
	Audit engine.Auditor
	Authz *api.Authorizer
	Log   *slog.Logger
	// MonitorArgv runs a detached container's monitor (engine.SpawnMonitor): this binary's
	// hidden monitor command with the same state root and policy.
	MonitorArgv []string
}

// Server serves the API. Start containers it has records of survive it.
type Server struct {
	cfg     config.Config
	eng     *engine.Engine
	audit   engine.Auditor
	authz   *api.Authorizer
	log     *slog.Logger
	monitor []string
	recs    *records
	execs   execs
	events  eventHub
	watch   *watchers
	started time.Time

	// spawnMu serialises monitor spawns (spawnMonitor tells its monitor by the new child).
	spawnMu sync.Mutex
}

// New prepares a server over an open engine: it takes the daemon's lock on the state root (one
// daemon per state root) and loads its container records.
func New(o Options) (*Server, error) {
	if o.Engine == nil || o.Authz == nil || o.Audit == nil || o.Log == nil || len(o.MonitorArgv) == 0 {
		return nil, errors.New("daemon: engine, audit log, API policy, logger and monitor command are required")
	}
	recs, err := openRecords(filepath.Join(o.Engine.Root(), "daemon"))
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: o.Config, eng: o.Engine, audit: o.Audit, authz: o.Authz, log: o.Log, monitor: o.MonitorArgv,
		recs: recs, started: time.Now()}
	s.watch = newWatchers(s)
	return s, nil
}

// Close releases the state root's daemon lock.
func (s *Server) Close() error { return s.recs.close() }

// Listen makes the socket: stale socket removed, mode 0660, group SocketGroup. The directory
// is made 0755 if missing.
func (s *Server) Listen() (net.Listener, error) {
	path := s.cfg.Socket
	gid := 0
	if s.cfg.SocketGroup != "" {
		g, err := lookupGroup(s.cfg.SocketGroup)
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
	if err := os.Chmod(path, 0o660); err != nil {
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

// Serve answers on ln until ctx ends, then shuts down gracefully: no new connection, requests
// in flight get ShutdownTimeout, streams are cut. Containers keep running.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.Handler(),
		ConnContext:       s.connContext,
		ReadHeaderTimeout: s.cfg.Limits.ReadHeaderTimeout.Duration,
		ReadTimeout:       s.cfg.Limits.ReadTimeout.Duration,
		IdleTimeout:       s.cfg.Limits.IdleTimeout.Duration,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	s.watch.resume()
	s.event("start", map[string]string{"socket": s.cfg.Socket, "api_policy": s.authz.Source})
	s.log.Info("serving", "socket", s.cfg.Socket, "state_root", s.eng.Root(), "api", APIVersion)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "timeout", s.cfg.Limits.ShutdownTimeout.Duration)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.Limits.ShutdownTimeout.Duration)
	defer cancel()
	err := hs.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = hs.Close()
	}
	s.watch.stop()
	s.event("stop", nil)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// event appends a daemon record to the audit log; a failure is logged (the daemon's own start
// and stop are not requests to refuse).
func (s *Server) event(action string, attrs map[string]string) {
	uid := os.Getuid()
	if _, err := s.audit.Append(audit.Event{Type: audit.TypeDaemon, Action: action, Actor: audit.Actor{UID: &uid, Principal: "bulwarkd"}, Attrs: attrs}); err != nil {
		s.log.Error("audit append failed", "action", action, "error", err)
	}
}

// signalOf parses Docker's signal names and numbers ("KILL", "SIGKILL", "9").
func signalOf(v string) (syscall.Signal, error) {
	if v == "" {
		return syscall.SIGKILL, nil
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n), nil
	}
	name := v
	if len(name) < 3 || name[:3] != "SIG" {
		name = "SIG" + name
	}
	if s := unix.SignalNum(name); s != 0 {
		return s, nil
	}
	return 0, statusError(http.StatusBadRequest, "invalid signal %q", v)
}
