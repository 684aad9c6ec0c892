package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/atomicfile"
	"bulwark.dev/bulwark/policy/document"
)

// ErrRollback is returned for a bundle older than (or conflicting with) the newest one this
// state root has accepted. OPA bundle signatures say nothing about freshness: an old bundle
// stays validly signed forever, so replaying one would silently restore an old, looser policy.
var ErrRollback = errors.New("policy bundle rollback refused")

// parseRevision reads a manifest revision as the monotonic counter Bulwark requires.
func parseRevision(s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bundle manifest revision %q is not an unsigned integer (Bulwark needs a monotonic counter): %w", s, err)
	}
	return n, nil
}

// checkRevision refuses rev if it is older than the accepted one, or equal with other content.
func checkRevision(root string, rev uint64, digest string) error {
	cur, ok, err := document.ReadAcceptedRevision(root)
	if err != nil || !ok {
		return err
	}
	switch {
	case rev < cur.Revision:
		return fmt.Errorf("%w: revision %d is older than accepted revision %d", ErrRollback, rev, cur.Revision)
	case rev == cur.Revision && digest != cur.Digest:
		return fmt.Errorf("%w: revision %d was accepted with different content (%s, now %s)", ErrRollback, rev, cur.Digest, digest)
	}
	return nil
}

// commitRevision records rev as accepted, under an exclusive lock so two concurrent loads
// cannot lower it, and atomically (write, fsync, rename).
func commitRevision(root string, rev uint64, digest string) error {
	dir := filepath.Join(root, "policy")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".revision.lock"), os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("open revision lock: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock revision: %w", err)
	}
	if err := checkRevision(root, rev, digest); err != nil {
		return err
	}
	data, err := json.Marshal(AcceptedRevision{Revision: rev, Digest: digest})
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(dir, document.RevisionFile), data, atomicfile.Options{Sync: true}); err != nil {
		return fmt.Errorf("install accepted revision: %w", err)
	}
	return nil
}
