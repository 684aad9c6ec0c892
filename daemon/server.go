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
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/daemon/activation"
	"bulwark.dev/bulwark/daemon/config"
	"bulwark.dev/bulwark/daemon/metrics"
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
	// Metrics count what the daemon does (Audit should be Metrics.Auditor of the log).
	Metrics *metrics.Metrics
	// LoadConfig reads the configuration again (file and flags) for a reload; nil: the
	// configuration has no file, a reload keeps the tenant map.
	LoadConfig func() (config.Config, error)
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
	metrics *metrics.Metrics
	monitor []string
	recs    *records
	execs   execs
	stdins  stdins
	holds   *holds
	events  eventHub
	watch   *watchers
	started time.Time
	// ident is the configuration connections are identified by (a reload replaces it).
	ident      atomic.Pointer[config.Config]
	loadConfig func() (config.Config, error)
	reloadMu   sync.Mutex // one reload at a time
	streams    streams    // requests that stream (cut at shutdown)
	// notify tells a service manager the daemon is ready, reloading or stopping.
	notify activation.Notifier

	// spawnMu serialises monitor spawns (spawnMonitor tells its monitor by the new child).
	spawnMu sync.Mutex
}

// New prepares a server over an open engine: it takes the daemon's lock on the state root (one
// daemon per state root) and loads its container records.
func New(o Options) (*Server, error) {
	if o.Engine == nil || o.Authz == nil || o.Audit == nil || o.Log == nil || o.Metrics == nil || len(o.MonitorArgv) == 0 {
		return nil, errors.New("daemon: engine, audit log, API policy, logger, metrics and monitor command are required")
	}
	recs, err := openRecords(filepath.Join(o.Engine.Root(), "daemon"))
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: o.Config, eng: o.Engine, audit: o.Audit, authz: o.Authz, log: o.Log, monitor: o.MonitorArgv,
		recs: recs, started: time.Now(), holds: openHolds(filepath.Join(o.Engine.Root(), "daemon")),
		metrics: o.Metrics, loadConfig: o.LoadConfig}
	s.ident.Store(&o.Config)
	s.watch = newWatchers(s)
	o.Metrics.Containers(s.containerCounts)
	return s, nil
}

// Close releases the state root's daemon lock.
func (s *Server) Close() error { return s.recs.close() }

// serve answers on every API listener until ctx ends, then shuts down gracefully: no new
// connection, streams (attach, exec, logs -f, events, wait) cut at once, requests in flight
// given ShutdownTimeout to finish (their contexts are cancelled only then). Containers keep
// running: they are supervised apart from the daemon.
func (s *Server) serve(ctx context.Context, l *listeners) error {
	// Requests do not see ctx end: a shutdown lets them finish, up to its timeout.
	reqCtx, cancelReqs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelReqs()
	hs := &http.Server{
		Handler:           s.instrument(s.Handler()),
		ConnContext:       s.connContext,
		ReadHeaderTimeout: s.cfg.Limits.ReadHeaderTimeout.Duration,
		ReadTimeout:       s.cfg.Limits.ReadTimeout.Duration,
		IdleTimeout:       s.cfg.Limits.IdleTimeout.Duration,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
	}
	s.watch.resume()
	go s.refreshTrust(ctx)
	addrs := make([]string, 0, len(l.api))
	for _, ln := range l.api {
		addrs = append(addrs, ln.Addr().String())
	}
	s.event("start", map[string]string{"socket": strings.Join(addrs, ","), "api_policy": s.authz.Source})
	s.log.Info("serving", "sockets", addrs, "state_root", s.eng.Root(), "api", APIVersion)
	errc := make(chan error, len(l.api)+1)
	for _, ln := range l.api {
		go func() { errc <- hs.Serve(ln) }()
	}
	if l.metrics != nil {
		ms := &http.Server{Handler: s.metrics.Handler(), ReadHeaderTimeout: s.cfg.Limits.ReadHeaderTimeout.Duration,
			ReadTimeout: s.cfg.Limits.ReadTimeout.Duration, ErrorLog: hs.ErrorLog}
		defer ms.Close()
		go func() { errc <- ms.Serve(l.metrics) }()
		s.log.Info("serving metrics", "socket", l.metrics.Addr().String())
	}
	s.notifyManager("READY=1")
	select {
	case err := <-errc:
		hs.Close()
		return err
	case <-ctx.Done():
	}
	s.notifyManager("STOPPING=1")
	timeout := s.cfg.Limits.ShutdownTimeout.Duration
	cut := s.streams.closeAll()
	s.log.Info("shutting down", "timeout", timeout, "streams_cut", cut)
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		s.log.Warn("requests still in flight at the shutdown timeout are cut", "timeout", timeout)
		cancelReqs()
		err = hs.Close()
	}
	s.watch.stop()
	s.event("stop", nil)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func (s *Server) notifyManager(state string) {
	if err := s.notify.Notify(state); err != nil {
		s.log.Warn("service manager not notified", "state", state, "error", err)
	}
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
