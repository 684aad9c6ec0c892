package sandbox

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
