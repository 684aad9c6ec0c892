package signing

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"bulwark.dev/bulwark/internal/atomicfile"
	"bulwark.dev/bulwark/signing/record"
)

// A new Client (every CLI process) had go-tuf re-read and re-verify the whole cached chain (root,
// timestamp, snapshot, targets: JSON decoding, canonical re-encoding and an ed25519 verification
// each) before it looked a target up: 3-6 ms of every `bulwark run` with an unchanged repository.
// A full refresh now leaves its outcome in <cache>/verified.json, from which a later Client (or
// the bulwark CLI, which links no go-tuf: package record) answers while the repository and the
// cache are exactly as that refresh left them (record.Lookup says when).

// fromRecord answers path from the cache's record of the last full refresh (nil: do a full
// refresh).
func (c *Client) fromRecord(path string) *Target {
	if c.o.Offline {
		return nil
	}
	return record.Lookup(c.o.CacheDir, path, func(name string, max int64) ([]byte, bool, error) {
		b, err := c.fetch.DownloadFile(c.url(name), max, 0)
		var nf *metadata.ErrDownloadHTTP
		return b, errors.As(err, &nf) && nf.StatusCode == http.StatusNotFound, err
	})
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
	p := filepath.Join(c.o.CacheDir, record.Name)
	st := record.Read(c.o.CacheDir)
	if st == nil || st.Root != record.Sum(root) || st.Timestamp != record.Sum(ts) {
		st = &record.State{Root: record.Sum(root), Timestamp: record.Sum(ts), RootVersion: tm.Root.Signed.Version}
	}
	if st.Targets == nil {
		st.Targets = map[string]*Target{}
	}
	st.Expires = expires
	st.Targets[path] = t
	if b, err := json.Marshal(st); err == nil {
		_ = atomicfile.Write(p, b, atomicfile.Options{Perm: 0o600})
	}
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
