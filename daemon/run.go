package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/daemon/activation"
	"bulwark.dev/bulwark/daemon/config"
	"bulwark.dev/bulwark/daemon/metrics"
	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/engine/opapolicy"
	"bulwark.dev/bulwark/image/zstd"
	"bulwark.dev/bulwark/network/cni"
	"bulwark.dev/bulwark/policy/api"
	"bulwark.dev/bulwark/signing"
)

// MonitorCommand is the hidden command of bulwarkd that runs a detached container's monitor.
const MonitorCommand = "__monitor"

// ResolverCommand is the hidden command of bulwarkd that serves a network's resolver
// (engine.Config.Resolver: the tenant and the network follow as arguments).
const ResolverCommand = "__resolver"

// EngineConfig is the engine configuration cfg names (the daemon's and its monitors').
func EngineConfig(cfg config.Config) (engine.Config, error) {
	// The daemon links OPA anyway (its API policy): it prepares the run policy once and
	// decides in memory.
	ec := engine.Config{Root: cfg.StateRoot, PolicyDir: cfg.PolicyDir, PolicyBundle: cfg.PolicyBundle, Policies: opapolicy.Policies{}, Trust: signing.Resolver{}, Zstd: zstd.Decode, CNI: cni.Plugins{}}
	if cfg.PolicyKey != "" {
		if _, err := os.Stat(cfg.PolicyKey); err != nil {
			return ec, fmt.Errorf("policy key: %w", err)
		}
		k, err := filepath.Abs(cfg.PolicyKey)
		if err != nil {
			return ec, fmt.Errorf("policy key: %w", err)
		}
		ec.PolicyKeyFile = k
	}
	// The state root's supervisor and a network's resolver are this binary's hidden commands:
	// with them, containers whose supervisor died are adopted again when read, and containers
	// of a network resolve each other by name.
	ec.Monitor = MonitorArgv(cfg)
	ec.Resolver = hiddenArgv(cfg, ResolverCommand)
	return ec, nil
}

// MonitorArgv is the command line of a monitor for cfg: this executable, re-executed.
func MonitorArgv(cfg config.Config) []string { return hiddenArgv(cfg, MonitorCommand) }

// hiddenArgv re-executes this binary as one of its hidden commands, with cfg's state root and
// run policy.
func hiddenArgv(cfg config.Config, command string) []string {
	argv := []string{"/proc/self/exe", command, "--state-root", cfg.StateRoot}
	if cfg.PolicyDir != "" {
		argv = append(argv, "--policy-dir", cfg.PolicyDir)
	}
	if cfg.PolicyBundle != "" {
		argv = append(argv, "--policy-bundle", cfg.PolicyBundle, "--policy-key", cfg.PolicyKey)
	}
	return argv
}

// Logger is the daemon's structured log at cfg's level, JSON on stderr.
func Logger(cfg config.Config) *slog.Logger {
	var lv slog.Level
	lv.UnmarshalText([]byte(cfg.LogLevel)) // validated with the configuration
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
}

// Run opens the state root (audit log, engine, API policy), listens and serves until ctx ends;
// SIGHUP reloads (Server.Reload), with load (nil: no configuration file) reading the
// configuration again.
func Run(ctx context.Context, cfg config.Config, load func() (config.Config, error), log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	ec, err := EngineConfig(cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.StateRoot, 0o700); err != nil {
		return fmt.Errorf("state root: %w", err)
	}
	alog, err := audit.Open(filepath.Join(cfg.StateRoot, "audit"), audit.Options{})
	if err != nil {
		return fmt.Errorf("open audit log: %w", err)
	}
	defer alog.Close()
	m := metrics.New()
	ec.Audit = m.Auditor(alog)
	eng, err := engine.Open(ec)
	if err != nil {
		return err
	}
	defer eng.Close()
	authz, err := api.New(ctx, cfg.APIPolicyDir)
	if err != nil {
		return err
	}
	s, err := New(Options{Config: cfg, Engine: eng, Audit: ec.Audit, Authz: authz, Log: log, Metrics: m, LoadConfig: load, MonitorArgv: MonitorArgv(cfg)})
	if err != nil {
		return err
	}
	defer s.Close()
	s.notify = activation.NewNotifier()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				s.Reload(ctx)
			}
		}
	}()
	l, err := s.listen()
	if err != nil {
		return err
	}
	defer l.close()
	return s.serve(ctx, l)
}
