package sandbox

import (
	"crypto/sha256"
	"encoding/hex"
)

// rangeHolder names container id as a holder of its tenant's id range in the host-wide
// allocator (Options.IDMapDir), which runtimes with roots of their own share: bulwark-runc's
// --root per containerd namespace beside one state root, the engine's run root beside it. An id
// is unique only within one root, so the holder is the id and a digest of the root: a container
// of the same id in another root is a holder of its own, and deleting it leaves this one's range
// held (TestRangeHolderPerRuntimeRoot). '@' is in no container id (ValidateID).
func (r *Runtime) rangeHolder(id string) string {
	sum := sha256.Sum256([]byte(r.opts.Root))
	return id + "@" + hex.EncodeToString(sum[:8])
}
