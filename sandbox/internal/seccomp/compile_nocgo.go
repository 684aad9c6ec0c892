//go:build !cgo

package seccomp

import (
	"errors"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// errNoCgo explains why a cgo-free build cannot compile: libseccomp is a C library.
var errNoCgo = errors.New("compile seccomp: this binary was built without cgo, so libseccomp is unavailable")

// Compile needs libseccomp; a cgo-free build can only load programs compiled elsewhere.
func Compile(p *specs.LinuxSeccomp) (*Program, error) { return nil, errNoCgo }

func libVersion() string { return "none" }
