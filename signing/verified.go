package signing

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"bulwark.dev/bulwark/internal/atomicfile"
	"bulwark.dev/bulwark/internal/ownfile"
)

// A new Client (every CLI process) had go-tuf re-read and re-verify the whole cached chain (root,
// timestamp, snapshot, targets: JSON decoding, canonical re-encoding and an ed25519 verification
// each) before it looked a target up: 3-6 ms of every `bulwark run` with an unchanged repository.
// A full refresh now leaves its outcome in <cache>/verified.json: the digests of the trusted
// root and of the timestamp it verified, the root's version, the earliest expiry of everything
// trusted then, and the targets it resolved. A later Client whose repository still publishes
// byte for byte that timestamp, with no newer root to rotate to, whose cached root is that root
// and whose record has not expired, answers a recorded target from the record: the check a
// long-lived Client makes in memory (unchanged), across processes. Anything else (no record, a
// changed timestamp or root, a rotation pending, a target not recorded, an expiry reached, a
// record that is not this user's own 0600 file) is a full refresh. The record sits beside the
// cached root.json, which go-tuf trusts as is: whoever can write one can write the other.

// verifiedName is the record's file name in the cache directory.
const verifiedName = "verified.json"

// verifiedState is the outcome of a full refresh.
type verifiedState struct {
	Root        string             `json:"root"`      // sha256 of the cache's root.json
	Timestamp   string             `json:"timestamp"` // sha256 of the timestamp.json verified
	RootVersion int64              `json:"root_version"`
	Expires     time.Time          `json:"expires"` // the earliest expiry of the trusted metadata
	Targets     map[string]*Target `json:"targets"` // target path -> resolved, role included
}

func sum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

// fromRecord answers path from the cache's record of the last full refresh if the repository and
// the cache are still exactly as that refresh left them (nil: do a full refresh).
func (c *Client) fromRecord(path string) *Target {
	if c.o.Offline {
		return nil
	}
	var st verifiedState
	b := ownfile.Read(filepath.Join(c.o.CacheDir, verifiedName), 1<<20)
	if b == nil || json.Unmarshal(b, &st) != nil || !time.Now().Before(st.Expires) {
		return nil
	}
	t := st.Targets[path]
	if t == nil {
		return nil
	}
	root, err := os.ReadFile(filepath.Join(c.o.CacheDir, "root.json"))
	if err != nil || sum(root) != st.Root {
		return nil
	}
	ts, err := c.fetch.DownloadFile(c.url("timestamp.json"), maxTimestamp, 0)
	if err != nil || sum(ts) != st.Timestamp {
		return nil
	}
	var nf *metadata.ErrDownloadHTTP
	if _, err := c.fetch.DownloadFile(c.url(fmt.Sprintf("%d.root.json", st.RootVersion+1)), maxRoot, 0); !errors.As(err, &nf) || nf.StatusCode != http.StatusNotFound {
		return nil // a rotation to follow, or an answer we do not understand
	}
	out := *t
	return &out
}

// record adds t (resolved by a full refresh whose trusted metadata is tm) to the cache's record,
// starting it afresh when that refresh trusted another root or timestamp. A record that cannot be
// written only costs the next Client a full refresh.
func (c *Client) record(tm trustedmetadata.TrustedMetadata, path string, t *Target) {
	if c.o.Offline {
		return
	}
	root, err := os.ReadFile(filepath.Join(c.o.CacheDir, "root.json"))
	if err != nil {
		return
	}
	ts, err := os.ReadFile(filepath.Join(c.o.CacheDir, "timestamp.json"))
	if err != nil {
		return
	}
	expires := tm.Root.Signed.Expires
	for _, e := range []time.Time{tm.Timestamp.Signed.Expires, tm.Snapshot.Signed.Expires} {
		expires = earliest(expires, e)
	}
	for _, r := range tm.Targets {
		expires = earliest(expires, r.Signed.Expires)
	}
	p := filepath.Join(c.o.CacheDir, verifiedName)
	var st verifiedState
	if b := ownfile.Read(p, 1<<20); b == nil || json.Unmarshal(b, &st) != nil || st.Root != sum(root) || st.Timestamp != sum(ts) {
		st = verifiedState{Root: sum(root), Timestamp: sum(ts), RootVersion: tm.Root.Signed.Version}
	}
	if st.Targets == nil {
		st.Targets = map[string]*Target{}
	}
	st.Expires = expires
	st.Targets[path] = t
	if b, err := json.Marshal(&st); err == nil {
		_ = atomicfile.Write(p, b, atomicfile.Options{Perm: 0o600})
	}
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
