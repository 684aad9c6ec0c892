package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"syscall"
	"testing"

	"github.com/spf13/cobra"

	"bulwark.dev/bulwark/cmd/internal/clibase"
	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/errdefs"
	"bulwark.dev/bulwark/policy"
	"bulwark.dev/bulwark/sandbox"
)

// rootOf runs the command line args (a no-op subcommand) and returns the state root it used.
func rootOf(t *testing.T, args ...string) string {
	t.Helper()
	c := newRootCmd(nil)
	var got string
	c.AddCommand(&cobra.Command{Use: "probe-root",
		// Its own hook replaces the root's needs-root check: this test runs as any user.
		PersistentPreRunE: func(*cobra.Command, []string) error { return nil },
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			got, err = cmd.Flags().GetString("root")
			return err
		}})
	c.SetArgs(append(args, "probe-root"))
	if err := c.Execute(); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestStateRootPrecedence: --root wins over BULWARK_STATE_ROOT, which wins over the default (the
// same order as bulwark-runc's --state-root).
func TestStateRootPrecedence(t *testing.T) {
	t.Setenv(clibase.StateRootEnv, "")
	if got := rootOf(t); got != "/var/lib/bulwark" {
		t.Errorf("default root %q", got)
	}
	t.Setenv(clibase.StateRootEnv, "/tmp/from-env")
	if got := rootOf(t); got != "/tmp/from-env" {
		t.Errorf("env root %q", got)
	}
	if got := rootOf(t, "--root", "/tmp/from-flag"); got != "/tmp/from-flag" {
		t.Errorf("flag root %q", got)
	}
}

// TestExitCodeClasses: the exit status comes from the error's class, not its text.
func TestExitCodeClasses(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("rm x: %w", engine.ErrNotFound), 1},
		{fmt.Errorf("start: %w", sandbox.ErrInvalidState), 1},
		{errdefs.Errorf(errdefs.ErrAlreadyExists, "name in use"), 1},
		{fmt.Errorf("run: %w", sandbox.ErrFloor), 125},
		{&policy.DeniedError{}, 125},
		{fmt.Errorf("%w: x", engine.ErrVerification), 125},
		{errors.New("disk full"), 125},
		{&clibase.ExitError{Code: 7, Err: errSilent}, 7},
	} {
		if got := clibase.ExitCode(tc.err); got != tc.want {
			t.Errorf("%v: exit %d, want %d", tc.err, got, tc.want)
		}
	}
	if !errors.Is(&policy.DeniedError{}, errdefs.ErrRefusedByPolicy) || !errors.Is(sandbox.ErrFloor, errdefs.ErrRefusedByFloor) ||
		!errors.Is(engine.ErrVerification, errdefs.ErrUntrusted) || !errors.Is(sandbox.ErrExist, errdefs.ErrAlreadyExists) {
		t.Error("a sentinel lost its class")
	}
}

// TestSignalledEarly: a signal caught before the container exists ends the run as its default
// action would have (128+n); a window resize does not.
func TestSignalledEarly(t *testing.T) {
	sigs := make(chan os.Signal, 8)
	if err := signalledEarly(sigs); err != nil {
		t.Fatalf("no signal: %v", err)
	}
	sigs <- syscall.SIGWINCH
	if err := signalledEarly(sigs); err != nil {
		t.Fatalf("SIGWINCH: %v", err)
	}
	sigs <- syscall.SIGWINCH
	sigs <- syscall.SIGTERM
	var ee *clibase.ExitError
	if err := signalledEarly(sigs); !errors.As(err, &ee) || ee.Code != 143 {
		t.Fatalf("SIGTERM: %v, want exit 143", err)
	}
}

// TestSubcommandNames: each of subcommands is listed under the name and aliases of the command it
// makes, so that a command line naming it makes it alone (lazycmd.AddSubs), and the whole tree
// has each once.
func TestSubcommandNames(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range subcommands {
		c := s.Make()
		if want := append([]string{c.Name()}, c.Aliases...); !slices.Equal(s.Names, want) {
			t.Errorf("listed as %v, makes %v", s.Names, want)
		}
		for _, n := range s.Names {
			if seen[n] {
				t.Errorf("%s listed twice", n)
			}
			seen[n] = true
		}
	}
	if got := len(newRootCmd(nil).Commands()); got != len(subcommands) {
		t.Errorf("the whole tree has %d commands, subcommands lists %d", got, len(subcommands))
	}
	if cs := newRootCmd([]string{"--root", "/x", "run", "--rm", "img"}).Commands(); len(cs) != 1 || cs[0].Name() != "run" {
		t.Errorf("bulwark --root /x run: made %d commands", len(cs))
	}
}
