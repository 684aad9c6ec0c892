package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"bulwark.dev/bulwark/cmd/internal/clibase"
	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/network/cni"
	"bulwark.dev/bulwark/network/resolver"
)

// newCNICmd is the hidden command that runs a network's CNI plugins for bulwark
// (engine.HelperCNI); SIGTERM, its caller's cancellation, stops the plugin as libcni does.
func newCNICmd() *cobra.Command {
	return &cobra.Command{
		Use:    engine.CNICommand + " add|del",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM)
			defer stop()
			if err := cni.Serve(ctx, args[0], cmd.InOrStdin(), cmd.OutOrStdout()); err != nil {
				return &clibase.ExitError{Code: engine.HelperStatus(err), Err: err}
			}
			return nil
		},
	}
}

// newResolverCmd is the hidden command that serves a network's resolver for bulwark
// (engine.ResolverCommand); it reports readiness on descriptor 3.
func newResolverCmd() *cobra.Command {
	return &cobra.Command{
		Use:    engine.ResolverCommand + " TENANT NETWORK",
		Hidden: true,
		Args:   cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			root, err := cmd.Flags().GetString("root")
			if err != nil {
				return err
			}
			return resolver.Serve(cmd.Context(), root, args[0], args[1], os.NewFile(3, "ready"))
		},
	}
}
