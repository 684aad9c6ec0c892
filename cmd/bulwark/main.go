// Command bulwark is Bulwark's daemonless command line: run, images, trust, policy and audit.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"bulwark.dev/bulwark/sandbox"
)

func main() {
	// A re-executed sandbox setup child never returns from here.
	sandbox.Init()
	root := &cobra.Command{
		Use:           "bulwark",
		Short:         "A security-hardened sandbox runtime",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("root", "/var/lib/bulwark", "state root")
	root.AddCommand(newPolicyCmd(), newImageCmd(), newTrustCmd(), newAuditCmd())
	root.AddCommand(newRunCmd(), newMonitorCmd(), newPsCmd(), newInspectCmd(), newLogsCmd(), newExecCmd(),
		newStopCmd(), newKillCmd(), newRmCmd(), newPauseCmd(), newUnpauseCmd(), newStatsCmd())
	if err := root.Execute(); err != nil {
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(os.Stderr, "bulwark:", msg)
		}
		os.Exit(exitCode(err))
	}
}
