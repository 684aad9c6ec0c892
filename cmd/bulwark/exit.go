package main

import (
	"errors"

	"bulwark.dev/bulwark/errdefs"
)

// exitError carries the process exit status a command wants.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// exitCode maps an error to the exit status: the one it carries; 1 for the caller's mistakes
// (no such object, a name in use, a bad argument, the wrong state — docker's status for a failed
// container command); else 125 as docker uses for "the engine itself failed or refused".
func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	switch errdefs.Class(err) {
	case errdefs.ErrNotFound, errdefs.ErrAlreadyExists, errdefs.ErrInvalidArgument, errdefs.ErrConflict:
		return 1
	}
	return 125
}
