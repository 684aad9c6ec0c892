// Package errdefs is the small set of error classes Bulwark's errors carry, so that a caller (the
// CLI's exit statuses, a daemon's HTTP status codes) maps them in one place with errors.Is, as
// containerd's errdefs does. Packages wrap a class into their own sentinels and errors; they
// never need to know how the class is presented.
package errdefs

import (
	"errors"
	"fmt"
)

// The classes. Each is matched with errors.Is.
var (
	// ErrNotFound: the named object does not exist (HTTP 404).
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: the name or id is in use (HTTP 409).
	ErrAlreadyExists = errors.New("already exists")
	// ErrInvalidArgument: the request itself is malformed (HTTP 400).
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrConflict: not allowed in the object's current state, e.g. removing a running
	// container without force (HTTP 409).
	ErrConflict = errors.New("conflict with the current state")
	// ErrRefusedByFloor: the sandbox floor refuses what was asked, whatever policy says (HTTP 403).
	ErrRefusedByFloor = errors.New("refused by the floor")
	// ErrRefusedByPolicy: the policy denied the request (HTTP 403).
	ErrRefusedByPolicy = errors.New("refused by policy")
	// ErrUntrusted: the image failed trust or digest verification (HTTP 403).
	ErrUntrusted = errors.New("untrusted")
)

// classed is an error with its own message that is also its class.
type classed struct {
	msg   string
	class error
	err   error // what it wraps besides the class, if anything
}

func (e *classed) Error() string { return e.msg }

func (e *classed) Unwrap() []error {
	if e.err == nil {
		return []error{e.class}
	}
	return []error{e.class, e.err}
}

// New returns an error with message msg (the class is not repeated in it) that errors.Is
// matches against class; use it for a package's sentinels.
func New(class error, msg string) error { return &classed{msg: msg, class: class} }

// Errorf is fmt.Errorf (with %w) whose result also matches class.
func Errorf(class error, format string, a ...any) error {
	err := fmt.Errorf(format, a...)
	return &classed{msg: err.Error(), class: class, err: err}
}

// Wrap classes err (nil stays nil), keeping its message and its chain.
func Wrap(class error, err error) error {
	if err == nil {
		return nil
	}
	return &classed{msg: err.Error(), class: class, err: err}
}

// Class returns the class err carries, or nil.
func Class(err error) error {
	for _, c := range []error{ErrNotFound, ErrAlreadyExists, ErrInvalidArgument, ErrConflict,
		ErrRefusedByFloor, ErrRefusedByPolicy, ErrUntrusted} {
		if errors.Is(err, c) {
			return c
		}
	}
	return nil
}
