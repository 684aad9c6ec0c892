// Command bulwark is Bulwark's daemonless command line: run, images, trust, policy and audit (policy,
// bench, trust, image pull and image push served by bulwark-admin beside it: delegate.go).
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	"os"
	"time"

	"github.com/spf13/cobra"

	"bulwark.dev/bulwark/client/op"
	"bulwark.dev/bulwark/cmd/internal/clibase"
	"bulwark.dev/bulwark/internal/lazycmd"
	"bulwark.dev/bulwark/internal/privilege"
	"bulwark.dev/bulwark/internal/runroot"
	"bulwark.dev/bulwark/sandbox"
)

// The go:debug lines: bulwark's processes are commands that live milliseconds, or a supervisor
// that mostly waits; none has use for a GOMAXPROCS that follows its cgroup's CPU limit. With it,
// the Go runtime reads the limit again on sysmon's first tick and starts a goroutine to read it
// every second. (Go 1.26 reads it once at start-up whatever is set, to count the setting's use.)

// mainAt is when main began, for run --steps-log.
var mainAt time.Time

func main() {
	mainAt = time.Now()
	// A re-executed sandbox setup child never returns from here.
	sandbox.Init()
	clibase.Execute(newRootCmd(os.Args[1:]))
}

// newRootCmd is bulwark's command tree for the command line args (without the program's name):
// of the subcommands, only the one args names is made (lazycmd.AddSubs).
func newRootCmd(args []string) *cobra.Command {
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
	root.PersistentFlags().String("root", clibase.DefaultRoot(), "state root (env "+clibase.StateRootEnv+")")
	root.PersistentFlags().String("run-root", os.Getenv(clibase.RunRootEnv), "per-run runtime state, a tmpfs lost at reboot (env "+clibase.RunRootEnv+"; default: a directory of the state root's own under "+runroot.Base+")")
	root.PersistentFlags().String("host", os.Getenv(op.HostEnv), "send the command to bulwarkd at unix:///path/to/bulwark.sock instead of acting on the state root (env "+op.HostEnv+")")
	lazycmd.AddSubs(root, args, subcommands)
	return root
}

// subcommands are bulwark's commands under the root, by name (TestSubcommandNames checks the
// names against what each makes).
var subcommands = []lazycmd.Sub{
	{Names: []string{"image"}, Make: newImageCmd},
	{Names: []string{"audit"}, Make: newAuditCmd},
	{Names: []string{"run"}, Make: newRunCmd},
	{Names: []string{"attach"}, Make: newAttachCmd},
	{Names: []string{monitorCmdName}, Make: newMonitorCmd},
	{Names: []string{"ps"}, Make: newPsCmd},
	{Names: []string{"inspect"}, Make: newInspectCmd},
	{Names: []string{"logs"}, Make: newLogsCmd},
	{Names: []string{"exec"}, Make: newExecCmd},
	{Names: []string{"start"}, Make: newStartCmd},
	{Names: []string{"restart"}, Make: newRestartCmd},
	{Names: []string{"stop"}, Make: newStopCmd},
	{Names: []string{"kill"}, Make: newKillCmd},
	{Names: []string{"rm"}, Make: newRmCmd},
	{Names: []string{"pause"}, Make: newPauseCmd},
	{Names: []string{"unpause"}, Make: newUnpauseCmd},
	{Names: []string{"stats"}, Make: newStatsCmd},
	{Names: []string{"network"}, Make: newNetworkCmd},
	{Names: []string{resolverCmdName}, Make: newResolverCmd},
	{Names: []string{"volume"}, Make: newVolumeCmd},
	{Names: []string{"system"}, Make: newSystemCmd},
	// The commands that link OPA (policy, bench) or go-tuf and sigstore (trust) are
	// bulwark-admin's (delegate.go).
	{Names: []string{"policy"}, Make: func() *cobra.Command {
		return newDelegatedCmd("policy", "Evaluate, test and inspect the run policy")
	}},
	{Names: []string{"trust"}, Make: func() *cobra.Command {
		return newDelegatedCmd("trust", "TUF trust: sign image references and verify them")
	}},
	{Names: []string{"bench"}, Make: func() *cobra.Command {
		return newDelegatedCmd("bench", "Check the host, the engine's files and every running container against the CIS-mapped controls (read-only)")
	}},
}
