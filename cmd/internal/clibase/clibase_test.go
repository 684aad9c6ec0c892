package clibase

import (
	"errors"
	"fmt"
	"os/exec"
	"testing"

	"bulwark.dev/bulwark/errdefs"
)

// coded is an error of another package that carries its exit status (client.ExitStatus).
type coded struct{ code int }

func (c coded) Error() string         { return "" }
func (c coded) RemoteExitStatus() int { return c.code }

// TestExitCode: the status an error carries (ExitError, or another package's RemoteExitStatus),
// else its class's.
func TestExitCode(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int
	}{
		{&ExitError{Code: 3, Err: errors.New("")}, 3},
		{fmt.Errorf("run: %w", coded{7}), 7},
		{coded{0}, 0},
		{errdefs.Errorf(errdefs.ErrNotFound, "no such container"), 1},
		{errors.New("the engine failed"), 125},
	} {
		if got := ExitCode(c.err); got != c.want {
			t.Errorf("ExitCode(%#v) = %d, want %d", c.err, got, c.want)
		}
	}
}

// TestExitCodeOfFailedProcess: a failure that wraps the exit of a process the command ran (an
// *exec.ExitError: mkfs, iptables, a helper) ends the command with its class's status, not with
// that process's: the status is the command's own (125 when the engine failed), and a helper's 1
// or 127, or -1 for one killed by a signal (os.Exit(-1): 255), would read as the caller's mistake
// or a command not found.
func TestExitCodeOfFailedProcess(t *testing.T) {
	exitErr := func(script string) error {
		var ee *exec.ExitError
		if err := exec.Command("/bin/sh", "-c", script).Run(); !errors.As(err, &ee) {
			t.Fatalf("sh -c %q: %v, want an exit error", script, err)
		}
		return ee
	}
	for _, c := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("mkfs.ext4 on the volume image: %w: no space", exitErr("exit 3")), 125},
		{fmt.Errorf("cni del by bulwark-admin: %w", exitErr("kill -KILL $$")), 125},
		{fmt.Errorf("policy evaluator: %w", exitErr("exit 127")), 125},
		{errdefs.Wrap(errdefs.ErrNotFound, fmt.Errorf("helper: %w", exitErr("exit 2"))), 1},
	} {
		if got := ExitCode(c.err); got != c.want {
			t.Errorf("ExitCode(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}
