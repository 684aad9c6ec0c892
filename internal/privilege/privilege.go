// Package privilege is the first check of each Bulwark command line: the runtime needs root (or
// the daemon, which has it), and a caller without it gets one clear error before anything is
// decided or written, instead of a permission error from whichever step touches the host first.
package privilege

import (
	"errors"
	"fmt"
	"os"
)

// ErrNeedsRoot is the error of a caller that is not root.
var ErrNeedsRoot = errors.New("needs root (or the daemon)")

// Require returns ErrNeedsRoot, naming the caller's uid and why, unless the process runs with
// effective uid 0.
func Require() error { return require(os.Geteuid()) }

func require(euid int) error {
	if euid == 0 {
		return nil
	}
	return fmt.Errorf("%w: running as uid %d; Bulwark creates namespaces, cgroups and idmapped mounts, "+
		"and its state, policy revision and audit log are root's alone", ErrNeedsRoot, euid)
}
