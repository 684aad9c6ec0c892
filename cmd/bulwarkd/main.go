// Command bulwarkd is Bulwark's daemon: the Docker Engine API on a unix socket for many tenants
// (see daemon/ and docs/daemon.md). Flags override the configuration file.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"bulwark.dev/bulwark/daemon"
	"bulwark.dev/bulwark/daemon/config"
	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/internal/privilege"
	"bulwark.dev/bulwark/network/resolver"
	"bulwark.dev/bulwark/sandbox"
)

func main() {
	// A re-executed sandbox setup child never returns from here.
	sandbox.Init()
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "bulwarkd:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	var (
		cfgFile     string
		printConfig bool
		over        config.Config
	)
	c := &cobra.Command{
		Use:           "bulwarkd",
		Short:         "Serve the Docker Engine API for many tenants, every call decided by policy",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// load is the configuration: the file (if any) over the defaults, the flags over
			// both; a reload (SIGHUP) calls it again.
			load := func() (config.Config, error) {
				cfg := config.Default()
				if cfgFile != "" {
					var err error
					if cfg, err = config.Load(cfgFile); err != nil {
						return cfg, err
					}
				}
				fl := cmd.Flags()
				set := func(name string, dst *string, v string) {
					if fl.Changed(name) {
						*dst = v
					}
				}
				set("socket", &cfg.Socket, over.Socket)
				set("socket-group", &cfg.SocketGroup, over.SocketGroup)
				set("metrics-socket", &cfg.MetricsSocket, over.MetricsSocket)
				set("state-root", &cfg.StateRoot, over.StateRoot)
				set("policy-dir", &cfg.PolicyDir, over.PolicyDir)
				set("policy-bundle", &cfg.PolicyBundle, over.PolicyBundle)
				set("policy-key", &cfg.PolicyKey, over.PolicyKey)
				set("api-policy-dir", &cfg.APIPolicyDir, over.APIPolicyDir)
				set("log-level", &cfg.LogLevel, over.LogLevel)
				return cfg, cfg.Validate()
			}
			cfg, err := load()
			if err != nil {
				return err
			}
			if printConfig {
				b, err := cfg.JSON()
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
				return nil
			}
			if err := privilege.Require(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			if cfgFile == "" {
				load = nil
			}
			return daemon.Run(ctx, cfg, load, daemon.Logger(cfg))
		},
	}
	fl := c.Flags()
	fl.StringVar(&cfgFile, "config", "", "configuration file (JSON; see docs/daemon.md)")
	fl.BoolVar(&printConfig, "print-config", false, "print the effective configuration and exit")
	fl.StringVar(&over.Socket, "socket", "", "unix socket to serve on (default /run/bulwark/bulwark.sock)")
	fl.StringVar(&over.SocketGroup, "socket-group", "", "group owning the socket (mode 0660)")
	fl.StringVar(&over.MetricsSocket, "metrics-socket", "", "unix socket to serve Prometheus metrics on (default: none)")
	fl.StringVar(&over.StateRoot, "state-root", "", "state root (default /var/lib/bulwark)")
	fl.StringVar(&over.PolicyDir, "policy-dir", "", "run policy (or tenant data) directory")
	fl.StringVar(&over.PolicyBundle, "policy-bundle", "", "signed run policy bundle")
	fl.StringVar(&over.PolicyKey, "policy-key", "", "PEM public key the bundle must be signed with")
	fl.StringVar(&over.APIPolicyDir, "api-policy-dir", "", "API policy directory (rules, or data.json for the embedded rules)")
	fl.StringVar(&over.LogLevel, "log-level", "", "debug, info, warn or error")
	c.AddCommand(newMonitorCmd(), newResolverCmd())
	return c
}

// newMonitorCmd is the hidden command a detached container's monitor runs as
// (daemon.MonitorArgv).
func newMonitorCmd() *cobra.Command {
	return newHiddenCmd(daemon.MonitorCommand, cobra.NoArgs, func(cmd *cobra.Command, ec engine.Config, _ []string) error {
		return engine.ServeMonitor(func() (*engine.Engine, error) { return engine.Open(ec) }, os.Stdin)
	})
}

// newResolverCmd is the hidden command a network's resolver runs as (engine.Config.Resolver);
// it reports readiness on descriptor 3.
func newResolverCmd() *cobra.Command {
	return newHiddenCmd(daemon.ResolverCommand+" TENANT NETWORK", cobra.ExactArgs(2), func(cmd *cobra.Command, ec engine.Config, args []string) error {
		return resolver.Serve(cmd.Context(), ec.Root, args[0], args[1], os.NewFile(3, "ready"))
	})
}

// newHiddenCmd is one of the hidden commands bulwarkd re-executes itself as, with the state
// root and run policy flags of daemon.MonitorArgv.
func newHiddenCmd(use string, args cobra.PositionalArgs, run func(*cobra.Command, engine.Config, []string) error) *cobra.Command {
	cfg := config.Default()
	c := &cobra.Command{
		Use:    use,
		Hidden: true,
		Args:   args,
		RunE: func(cmd *cobra.Command, a []string) error {
			ec, err := daemon.EngineConfig(cfg)
			if err != nil {
				return err
			}
			return run(cmd, ec, a)
		},
	}
	c.Flags().StringVar(&cfg.StateRoot, "state-root", cfg.StateRoot, "state root")
	c.Flags().StringVar(&cfg.PolicyDir, "policy-dir", "", "run policy directory")
	c.Flags().StringVar(&cfg.PolicyBundle, "policy-bundle", "", "signed run policy bundle")
	c.Flags().StringVar(&cfg.PolicyKey, "policy-key", "", "bundle key")
	return c
}
