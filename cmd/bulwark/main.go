// Command bulwark is Bulwark's daemonless command line: run, images, trust, policy and audit.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	root := &cobra.Command{
		Use:           "bulwark",
		Short:         "A security-hardened sandbox runtime",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("root", "/var/lib/bulwark", "state root")
	root.AddCommand(newPolicyCmd(), newImageCmd(), newTrustCmd(), newAuditCmd())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "bulwark:", err)
		os.Exit(exitCode(err))
	}
}
