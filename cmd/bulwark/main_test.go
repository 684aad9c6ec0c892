package main

import (
	"testing"

	"github.com/spf13/cobra"
)

// rootOf runs the command line args (a no-op subcommand) and returns the state root it used.
func rootOf(t *testing.T, args ...string) string {
	t.Helper()
	c := newRootCmd()
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
	t.Setenv(stateRootEnv, "")
	if got := rootOf(t); got != "/var/lib/bulwark" {
		t.Errorf("default root %q", got)
	}
	t.Setenv(stateRootEnv, "/tmp/from-env")
	if got := rootOf(t); got != "/tmp/from-env" {
		t.Errorf("env root %q", got)
	}
	if got := rootOf(t, "--root", "/tmp/from-flag"); got != "/tmp/from-flag" {
		t.Errorf("flag root %q", got)
	}
}
