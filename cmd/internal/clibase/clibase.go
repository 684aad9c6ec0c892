// Package clibase is what the two halves of the bulwark command line share — bulwark, and
// bulwark-admin beside it with the commands that link OPA or go-tuf: the state root's default,
// the exit status an error carries and JSON output.
package clibase

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"bulwark.dev/bulwark/errdefs"
	"github.com/spf13/cobra"
)

// StateRootEnv names the state root when --root is not given, as for bulwark-runc's
// --state-root: the flag wins over the environment, the environment over the default.
const StateRootEnv = "BULWARK_STATE_ROOT"

// RunRootEnv names the run root when --run-root is not given.
const RunRootEnv = "BULWARK_RUN_ROOT"

// DefaultRoot is the state root without --root.
func DefaultRoot() string {
	if r := os.Getenv(StateRootEnv); r != "" {
		return r
	}
	return "/var/lib/bulwark"
}

// ExitError carries the process exit status a command wants.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode maps an error to the exit status: the one it carries; 1 for the caller's mistakes
// (no such object, a name in use, a bad argument, the wrong state — docker's status for a failed
// container command); else 125 as docker uses for "the engine itself failed or refused".
func ExitCode(err error) int {
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	// One of a package's own (client.ExitStatus: a command run through bulwarkd). Its method has a
	// name of its own: ExitCode is also *exec.ExitError's, the status of a process the command
	// ran (mkfs, iptables, a helper), which a failure wraps and which is not the command's.
	var remote interface{ RemoteExitStatus() int }
	if errors.As(err, &remote) {
		return remote.RemoteExitStatus()
	}
	switch errdefs.Class(err) {
	case errdefs.ErrNotFound, errdefs.ErrAlreadyExists, errdefs.ErrInvalidArgument, errdefs.ErrConflict:
		return 1
	}
	return 125
}

// PrintJSON writes v as indented JSON.
func PrintJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// Execute runs the command line root and ends the process as bulwark's commands do: an error's
// message printed after "bulwark:" (none for an error that carries only a status) and its exit
// status (ExitCode).
func Execute(root *cobra.Command) {
	if err := root.Execute(); err != nil {
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(os.Stderr, "bulwark:", msg)
		}
		os.Exit(ExitCode(err))
	}
}
