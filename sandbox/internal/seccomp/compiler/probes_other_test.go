//go:build !amd64

package compiler

import "golang.org/x/sys/unix"

type probe struct {
	name string
	want unix.Errno
	call func() unix.Errno
}

// The syscall probes are written for amd64's numbering and argument order.
var probes []probe

var hostEffect = map[string]bool{}

func runProbes(bool) map[string]int { return map[string]int{} }
