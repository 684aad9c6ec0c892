package main

import (
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/network/cni"
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
			return cni.Serve(ctx, args[0], cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
}
