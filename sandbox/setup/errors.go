package setup

import (
	"errors"
	"fmt"
	"syscall"
)

// InitError is a failure inside the container's init or exec process, reported back whole so the
// caller sees which layer refused and why (runc's initError lesson: containerd keeps only the last
// line of a runtime's stderr, so the structure must travel over the channel, not through a log).
type InitError struct {
	Layer   string        `json:"layer"`   // e.g. "mounts", "seccomp", "landlock", "caps"
	Step    string        `json:"step"`    // what was being done, e.g. "pivot_root"
	Errno   syscall.Errno `json:"errno"`   // 0 when the failure was not a syscall error
	Path    string        `json:"path"`    // the path involved, if any
	Message string        `json:"message"` // the full error text
}

func (e *InitError) Error() string {
	s := fmt.Sprintf("container init: layer %s, step %s", e.Layer, e.Step)
	if e.Path != "" {
		s += ", path " + e.Path
	}
	if e.Errno != 0 {
		s += fmt.Sprintf(", errno %d (%s)", int(e.Errno), e.Errno.Error())
	}
	return s + ": " + e.Message
}

// Unwrap lets errors.Is(err, syscall.EPERM) match a child-side syscall failure.
func (e *InitError) Unwrap() error {
	if e.Errno != 0 {
		return e.Errno
	}
	return nil
}

// stepError builds an InitError from err, extracting the errno if one is wrapped.
func stepError(layer, step, path string, err error) *InitError {
	ie := &InitError{Layer: layer, Step: step, Path: path, Message: err.Error()}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		ie.Errno = errno
	}
	return ie
}

// Exit statuses for a command that could not be run, with the meaning shells and Docker give
// them. They are decided here only, for both sides of the exec fifo: a failure found before the
// container starts (an *InitError, mapped by CommandStatus) and an execve that fails after it.
const (
	StatusCannotExecute = 126 // found, but not executable: a directory, no x bit, bad format, E2BIG
	StatusNotFound      = 127 // no such file, or not in PATH
)

// stepFindExecutable is the InitError step of resolving the command before the fifo.
const stepFindExecutable = "find executable"

// CommandStatus returns the exit status for err when it is the failure to find or execute the
// process's command (StatusNotFound or StatusCannotExecute), and false for any other error.
func CommandStatus(err error) (int, bool) {
	var ie *InitError
	if !errors.As(err, &ie) || ie.Step != stepFindExecutable {
		return 0, false
	}
	return errnoStatus(ie.Errno), true
}

// errnoStatus maps the errno of a failed lookup or execve to its exit status.
func errnoStatus(e syscall.Errno) int {
	if e == syscall.ENOENT {
		return StatusNotFound
	}
	return StatusCannotExecute
}
