package clibase

import (
	"errors"
	"fmt"
	"testing"

	"bulwark.dev/bulwark/errdefs"
)

// coded is an error of another package that carries its exit status (client.ExitStatus).
type coded struct{ code int }

func (c coded) Error() string { return "" }
func (c coded) ExitCode() int { return c.code }

// TestExitCode: the status an error carries (ExitError, or another package's ExitCode), else
// its class's.
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
