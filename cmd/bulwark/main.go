// Command bulwark is Bulwark's daemonless command line: run, images, trust, policy and audit.
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"bulwark.dev/bulwark/client"

	"bulwark.dev/bulwark/internal/privilege"
	"bulwark.dev/bulwark/internal/runroot"
	"bulwark.dev/bulwark/sandbox"
)

// stateRootEnv names the state root when --root is not given, as for bulwark-runc's
// --state-root: the flag wins over the environment, the environment over the default.
const stateRootEnv = "BULWARK_STATE_ROOT"

// defaultRoot is the state root without --root.
func defaultRoot() string {
	if r := os.Getenv(stateRootEnv); r != "" {
		return r
	}
	return "/var/lib/bulwark"
}

// runRootEnv names the run root when --run-root is not given.
const runRootEnv = "BULWARK_RUN_ROOT"

// mainAt is when main began, for run --steps-log.
var mainAt time.Time

func main() {
	mainAt = time.Now()
	// A re-executed sandbox setup child never returns from here.
	sandbox.Init()
	if err := newRootCmd().Execute(); err != nil {
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(os.Stderr, "bulwark:", msg)
		}
		os.Exit(exitCode(err))
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "bulwark",
		Short:         "A security-hardened sandbox runtime",
		SilenceUsage:  true,
		SilenceErrors: true,
		// First: with --host, the command goes to bulwarkd (or is refused); otherwise a non-root
		// caller gets one clear error before anything is decided or written (help aside, and
		// bench, which only reads and skips what needs root). The hidden commands the engine
		// runs (supervisor, resolver) are always local.
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Name() == "help" {
				return nil
			}
			if host, _ := cmd.Flags().GetString("host"); host != "" && !cmd.Hidden {
				return useHost(cmd, host)
			}
			if cmd.Name() == "bench" {
				return nil
			}
			return privilege.Require()
		},
	}
	root.PersistentFlags().String("root", defaultRoot(), "state root (env "+stateRootEnv+")")
	root.PersistentFlags().String("run-root", os.Getenv(runRootEnv), "per-run runtime state, a tmpfs lost at reboot (env "+runRootEnv+"; default: a directory of the state root's own under "+runroot.Base+")")
	root.PersistentFlags().String("host", os.Getenv(client.HostEnv), "send the command to bulwarkd at unix:///path/to/bulwark.sock instead of acting on the state root (env "+client.HostEnv+")")
	root.AddCommand(newImageCmd(), newAuditCmd())
	root.AddCommand(newRunCmd(), newAttachCmd(), newMonitorCmd(), newPsCmd(), newInspectCmd(), newLogsCmd(), newExecCmd(),
		newStartCmd(), newRestartCmd(), newStopCmd(), newKillCmd(), newRmCmd(), newPauseCmd(), newUnpauseCmd(), newStatsCmd(), newNetworkCmd(), newResolverCmd(), newVolumeCmd(), newSystemCmd())
	// The commands that link OPA (policy, bench) or go-tuf and sigstore (trust) are
	// bulwark-admin's (delegate.go).
	root.AddCommand(newDelegatedCmd("policy", "Evaluate, test and inspect the run policy"),
		newDelegatedCmd("trust", "TUF trust: sign image references and verify them"),
		newDelegatedCmd("bench", "Check the host, the engine's files and every running container against the CIS-mapped controls (read-only)"))
	return root
}
