//go:build !cgo

package compiler

import (
	"errors"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/sandbox/internal/seccomp"
)

// errNoCgo explains why a cgo-free build cannot compile: libseccomp is a C library.
var errNoCgo = errors.New("compile seccomp: this binary was built without cgo, so libseccomp is unavailable")

// Compile needs libseccomp; a cgo-free build can only load programs compiled elsewhere.
func Compile(p *specs.LinuxSeccomp) (*seccomp.Program, error) { return nil, errNoCgo }

// LibraryVersion is "none": a cgo-free build links no libseccomp.
func LibraryVersion() string { return "none" }
