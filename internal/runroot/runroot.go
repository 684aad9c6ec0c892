// Package runroot names where a state root's per-run runtime state lives: the sandbox's state of
// each container (its init's pid, the exec fifo, its effective spec) and the engine's record of a
// foreground --rm run, which describe processes that a reboot ends, on tmpfs under /run/bulwark as
// ARCHITECTURE.md intends. The state root itself (on disk) keeps what must survive: the other
// container records and logs, images, trust, policy revision, id ranges, the audit log. On ext4
// each file made or removed there cost a journal update (and the removals a discard); on tmpfs
// they cost nothing to speak of.
package runroot

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
)

// Base is the directory every state root's run root lives under, unless BaseEnv names another.
const Base = "/run/bulwark/roots"

// BaseEnv names a directory to hold the run roots instead of Base: the test suites keep theirs in
// a temporary directory (never the host's /run), and a host whose /run is not a tmpfs can name one.
const BaseEnv = "BULWARK_RUN_ROOTS"

// Of is the run root of the state root root (made absolute): one directory per state root, so
// that two state roots (tests, or two daemons) never share a container name.
func Of(root string) string {
	if abs, err := filepath.Abs(root); err == nil {
		root = abs
	}
	base := Base
	if d := os.Getenv(BaseEnv); d != "" {
		base = d
	}
	sum := sha256.Sum256([]byte(filepath.Clean(root)))
	return filepath.Join(base, hex.EncodeToString(sum[:8]))
}
