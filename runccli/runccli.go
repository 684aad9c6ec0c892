// Package runccli is bulwark-runc, Bulwark's runc-compatible command line: the global flags,
// subcommands, state output and exit codes that containerd's runc shim (BinaryName) and Docker's
// --add-runtime expect, in front of the sandbox package. Every container it creates gets the floor;
// nothing here can lower it. cmd/bulwark-runc only calls Main.
package runccli

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"bulwark.dev/bulwark/internal/lazycmd"
	"bulwark.dev/bulwark/internal/privilege"
	"bulwark.dev/bulwark/sandbox"
)

// version is the CLI version, reported the way callers parse `runc --version`.
const version = "0.1.0"

// globalOpts are runc's global flags plus Bulwark's extras.
type globalOpts struct {
	root          string
	logPath       string
	logFormat     string
	debug         bool
	systemdCgroup bool
	tenant        string
	allowNoMAC    bool
	policy        policyOpts
}

// rootlessOK marks the commands a non-root caller may run (besides help): they neither decide nor
// touch any state (runc too prints a spec or its features for anyone).
const rootlessOK = "bulwark.dev/rootless-ok"

// exitError carries a status the process must exit with, without printing anything: `run` and `exec`
// exit with their process's status, as runc does.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// Main runs bulwark-runc with the process's arguments and exits; it never returns.
func Main() {
	// The runtime re-executes this binary as the container's init; that path never returns.
	sandbox.Init()
	mainAt := time.Now()

	g := &globalOpts{}
	var log *logger
	ctx := &cliContext{g: g, log: func() *logger { return log }}
	root := &cobra.Command{
		Use:           "bulwark-runc",
		Short:         "Bulwark's runc-compatible OCI runtime: every container gets the hardened floor",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			parsed := time.Now()
			// First: a non-root caller gets one clear error before anything (even the log
			// file) is written.
			if _, ok := cmd.Annotations[rootlessOK]; !ok && cmd.Name() != "help" {
				if err := privilege.Require(); err != nil {
					return err
				}
			}
			ctx.command = cmd.Name()
			ctx.startPolicy(ctx.command)
			l, err := newLogger(g.logPath, g.logFormat, g.debug, mainAt)
			if err != nil {
				return err
			}
			log = l
			log.lapAt("cli:flags", parsed)
			log.lap("cli:log")
			if g.systemdCgroup {
				return errors.New("--systemd-cgroup is not supported: bulwark-runc manages cgroupfs " +
					"directly so that the cgroup floor (limits, device allowlist) cannot be delegated away")
			}
			return nil
		},
	}
	// runc has no completion command; cobra's would be built (four subcommands) at every start.
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetVersionTemplate("bulwark-runc version {{.Version}}\nspec: " + specVersion() + "\n")
	pf := root.PersistentFlags()
	pf.StringVar(&g.root, "root", "/run/bulwark-runc", "root directory for storage of container state (tmpfs recommended)")
	pf.StringVar(&g.logPath, "log", "", "log file to write bulwark-runc logs to (default is stderr)")
	pf.StringVar(&g.logFormat, "log-format", "text", "log format: 'text' or 'json'")
	pf.BoolVar(&g.debug, "debug", false, "enable debug logging")
	pf.BoolVar(&g.systemdCgroup, "systemd-cgroup", false, "accepted for compatibility; refused if set")
	pf.StringVar(&g.tenant, "tenant", sandbox.DefaultTenant,
		"tenant the caller acts for: it owns the containers it creates (and their id range), and sees only those")
	pf.BoolVar(&g.allowNoMAC, "allow-no-mac", false,
		"operator exception: allow starting on a host with no MAC layer (audited)")
	g.policy.register(pf)

	lazycmd.AddSubs(root, os.Args[1:], subcommands(ctx))
	err := root.Execute()
	if log != nil {
		log.flushSteps()
	}
	os.Exit(finish(err, log))
}

// subcommands are bulwark-runc's commands, by name (TestSubcommandNames checks the names against
// what each makes): a command line naming one makes that one alone (lazycmd.AddSubs).
func subcommands(ctx *cliContext) []lazycmd.Sub {
	with := func(make func(*cliContext) *cobra.Command) func() *cobra.Command {
		return func() *cobra.Command { return make(ctx) }
	}
	return []lazycmd.Sub{
		{Names: []string{"create"}, Make: with(newCreateCmd)},
		{Names: []string{"start"}, Make: with(newStartCmd)},
		{Names: []string{"run"}, Make: with(newRunCmd)},
		{Names: []string{"delete"}, Make: with(newDeleteCmd)},
		{Names: []string{"state"}, Make: with(newStateCmd)},
		{Names: []string{"kill"}, Make: with(newKillCmd)},
		{Names: []string{"pause"}, Make: with(newPauseCmd)},
		{Names: []string{"resume"}, Make: with(newResumeCmd)},
		{Names: []string{"exec"}, Make: with(newExecCmd)},
		{Names: []string{"ps"}, Make: with(newPsCmd)},
		{Names: []string{"list"}, Make: with(newListCmd)},
		{Names: []string{"features"}, Make: newFeaturesCmd},
		{Names: []string{"spec"}, Make: newSpecCmd},
	}
}

// finish reports err the way runc does (to the log, which containerd reads, and to stderr) and
// returns the exit code.
func finish(err error, log *logger) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	// err's text carries the whole chain, including the sandbox's child-side error (layer, step,
	// errno, path): containerd shows only this one message, so nothing may be cut.
	msg := err.Error()
	if log == nil {
		// Flag parsing failed before the logger existed.
		fmt.Fprintln(os.Stderr, "bulwark-runc:", msg)
		return 1
	}
	log.Error(msg)
	if !log.toStderr {
		fmt.Fprintln(os.Stderr, "bulwark-runc:", msg)
	}
	return 1
}
