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
func (r *Runtime) rangeHolder(id string) string { return id + "@" + r.rootDigest() }

// macKey names container id in the host-wide MAC state — its SELinux label in the label store,
// its AppArmor profile's name — as rangeHolder names it in the allocator, for the same reason: a
// container of the same id in another root must not share its MCS label, nor unload its profile
// when deleted (TestMACKeyPerRuntimeRoot). '.' instead of '@', which AppArmor names do not take;
// the digest's fixed length after the last '.' keeps the key unambiguous.
func (r *Runtime) macKey(id string) string { return id + "." + r.rootDigest() }

// rootDigest is a short digest of the runtime's root, which tells its containers from another
// root's of the same id.
func (r *Runtime) rootDigest() string {
	sum := sha256.Sum256([]byte(r.opts.Root))
	return hex.EncodeToString(sum[:8])
}
