// Package record answers a reference from the record of the state root's last full TUF refresh
// (signing's verified.json) without go-tuf or sigstore, so that the bulwark CLI, started for every
// run, links neither: a reference the record cannot answer is resolved by a full refresh in a
// binary that has them (engine.Config.Trust).
//
// A full refresh leaves its outcome in <cache>/verified.json: the digests of the trusted root and
// of the timestamp it verified, the root's version, the earliest expiry of everything trusted
// then, and the targets it resolved. The record answers while the repository still publishes byte
// for byte that timestamp, with no newer root to rotate to, the cached root is that root, nothing
// has expired and the record is this user's own 0600 file: the check a long-lived client makes in
// memory, across processes. Anything else (no record, a changed timestamp or root, a rotation
// pending, a target not recorded, an expiry reached, an answer not understood) is a miss. The
// record sits beside the cached root.json, which go-tuf trusts as is: whoever can write one can
// write the other.
package record

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/jsontext"
	"bulwark.dev/bulwark/internal/ownfile"
	"bulwark.dev/bulwark/internal/plainfile"
)

// Name is the record's file name in the metadata cache directory.
const Name = "verified.json"

// Metadata size limits of the record's fetches (go-tuf's own defaults for a full refresh).
const (
	MaxTimestamp = 16 << 10
	MaxRoot      = 512 << 10
)

// ErrDigestMismatch: an image's manifest or digest is not the signed target's.
var ErrDigestMismatch = errors.New("manifest does not match the signed target")

// Target is a signed image reference: the manifest's digest, length and media type, and the
// targets role that signed it.
type Target struct {
	Name      string        `json:"name"`
	Digest    digest.Digest `json:"digest"`
	Length    int64         `json:"length"`
	MediaType string        `json:"mediaType"`
	// Role is the targets role that signed it ("targets" or a tenant's delegated role).
	Role string `json:"role,omitempty"`
}

// VerifyManifest checks manifest bytes against the signed target.
func (t *Target) VerifyManifest(manifest []byte) error {
	if got := digest.FromBytes(manifest); got != t.Digest || int64(len(manifest)) != t.Length {
		return fmt.Errorf("%w: %s is signed as %s (%d bytes), manifest is %s (%d bytes)", ErrDigestMismatch, t.Name, t.Digest, t.Length, got, len(manifest))
	}
	return nil
}

// VerifyDigest checks that d is the signed digest.
func (t *Target) VerifyDigest(d digest.Digest) error {
	if d != t.Digest {
		return fmt.Errorf("%w: %s is signed as %s, local image is %s", ErrDigestMismatch, t.Name, t.Digest, d)
	}
	return nil
}

// TargetPath is the target name a reference is looked up under: NAME:TAG (":latest" when no
// tag is given) or NAME@sha256:HEX.
func TargetPath(ref string) string {
	if strings.Contains(ref, "@") {
		return ref
	}
	if strings.LastIndexByte(ref, ':') > strings.LastIndexByte(ref, '/') {
		return ref
	}
	return ref + ":latest"
}

// CheckPinned checks that the target of a NAME@DIGEST path is signed as that digest.
func CheckPinned(path string, t *Target) error {
	if i := strings.IndexByte(path, '@'); i >= 0 && string(t.Digest) != path[i+1:] {
		return fmt.Errorf("%w: %s is signed as %s", ErrDigestMismatch, path, t.Digest)
	}
	return nil
}

// State is the outcome of a full refresh.
type State struct {
	Root        string             `json:"root"`      // sha256 of the cache's root.json
	Timestamp   string             `json:"timestamp"` // sha256 of the timestamp.json verified
	RootVersion int64              `json:"root_version"`
	Expires     time.Time          `json:"expires"` // the earliest expiry of the trusted metadata
	Targets     map[string]*Target `json:"targets"` // target path -> resolved, role included
}

// Sum is the digest a State records of a metadata file.
func Sum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

// Read reads the record in cacheDir (nil: none, or not this user's own 0600 file).
func Read(cacheDir string) *State {
	var st State
	b := ownfile.Read(filepath.Join(cacheDir, Name), 1<<20)
	if b == nil || jsontext.Decode(b, &st, readState) != nil {
		return nil
	}
	return &st
}

// Fetch reads one metadata file of the repository, at most max bytes; notFound says the
// repository answered that it has none (HTTP 404, or no such file in a local repository).
type Fetch func(name string, max int64) (data []byte, notFound bool, err error)

// Lookup answers the target path from the record in cacheDir if the repository (fetch) and the
// cache are still exactly as the refresh that wrote it left them; nil means a full refresh.
func Lookup(cacheDir, path string, fetch Fetch) *Target {
	st := Read(cacheDir)
	if st == nil || !time.Now().Before(st.Expires) {
		return nil
	}
	t := st.Targets[path]
	if t == nil {
		return nil
	}
	root, err := plainfile.ReadFile(filepath.Join(cacheDir, "root.json"))
	if err != nil || Sum(root) != st.Root {
		return nil
	}
	ts, _, err := fetch("timestamp.json", MaxTimestamp)
	if err != nil || Sum(ts) != st.Timestamp {
		return nil
	}
	if _, notFound, _ := fetch(strconv.FormatInt(st.RootVersion+1, 10)+".root.json", MaxRoot); !notFound {
		return nil // a rotation to follow, or an answer we do not understand
	}
	out := *t
	if CheckPinned(path, &out) != nil {
		return nil
	}
	return &out
}

// clientConfig is signing's <trust>/client.json: the repository this host trusts.
type clientConfig struct {
	Remote string `json:"remote"`
}

// Resolve answers ref from the record of the trust directory's last full refresh, fetching from
// the repository its client.json names (a local directory, or http(s) with hc); nil: a full
// refresh must resolve it.
func Resolve(trustDir, ref string, hc *http.Client) *Target {
	b, err := plainfile.ReadFile(filepath.Join(trustDir, "client.json"))
	var cfg clientConfig
	if err != nil || jsontext.Decode(b, &cfg, readClientConfig) != nil || cfg.Remote == "" {
		return nil
	}
	return Lookup(filepath.Join(trustDir, "cache"), TargetPath(ref), RemoteFetch(cfg.Remote, hc))
}

// RemoteFetch fetches from remote: an http(s) URL (with hc; nil: a client with a short timeout)
// or a local repository directory.
func RemoteFetch(remote string, hc *http.Client) Fetch {
	if !strings.HasPrefix(remote, "http://") && !strings.HasPrefix(remote, "https://") {
		return func(name string, max int64) ([]byte, bool, error) {
			f, err := plainfile.Open(filepath.Join(remote, name))
			if errors.Is(err, os.ErrNotExist) {
				return nil, true, err
			}
			if err != nil {
				return nil, false, err
			}
			defer f.Close()
			return readMax(f, name, max)
		}
	}
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	return func(name string, max int64) ([]byte, bool, error) {
		resp, err := hc.Get(strings.TrimSuffix(remote, "/") + "/" + name)
		if err != nil {
			return nil, false, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, resp.StatusCode == http.StatusNotFound, fmt.Errorf("%s: %s", name, resp.Status)
		}
		return readMax(resp.Body, name, max)
	}
}

func readMax(r io.Reader, name string, max int64) ([]byte, bool, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(b)) > max {
		return nil, false, fmt.Errorf("%s exceeds %d bytes", name, max)
	}
	return b, false, nil
}

// LockCache takes the exclusive lock of the trust directory's metadata cache: concurrent
// processes share the cache, which a full refresh rewrites. The returned func releases it.
func LockCache(trustDir string) (func(), error) {
	p := filepath.Join(trustDir, "cache.lock")
	f, err := plainfile.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", p, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	return func() { f.Close() }, nil
}
