package signing

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/fetcher"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"bulwark.dev/bulwark/signing/record"
)

// ClientOptions configures verification against a repository.
type ClientOptions struct {
	// Root is the pinned root.json, trusted on first use only; afterwards the cache holds the
	// newest root reached by verified rotation.
	Root []byte
	// Remote is the repository's metadata URL (http or https) or a local directory.
	Remote   string
	CacheDir string
	// Offline verifies against cached metadata only; it works until that metadata expires.
	Offline    bool
	HTTPClient *http.Client
}

// Client resolves references through TUF. Every Resolve starts the TUF client workflow afresh:
// it looks for a newer root and fetches the timestamp. When the timestamp is byte-for-byte the
// one this Client last verified, no root rotation is pending and nothing trusted has expired,
// the snapshot and targets it vouches for are the ones already verified in memory, so they are
// reused instead of being re-read and re-verified; anything else triggers a full refresh
// (root, timestamp, snapshot, targets, delegations) by go-tuf.
type Client struct {
	o      ClientOptions
	fetch  fetcher.Fetcher
	isDir  bool
	mu     sync.Mutex
	last   *updater.Updater // guarded by mu: the updater of the last full refresh
	lastTS []byte           // guarded by mu: the timestamp.json bytes it verified
}

// Metadata size limits for the fast-path fetches (go-tuf's own defaults for the full refresh).
const (
	maxTimestamp = 16 << 10
	maxRoot      = 512 << 10
)

// NewClient checks the options and prepares the cache.
func NewClient(o ClientOptions) (*Client, error) {
	if len(o.Root) == 0 || o.Remote == "" || o.CacheDir == "" {
		return nil, errors.New("trust client: pinned root, remote and cache directory are required")
	}
	if err := os.MkdirAll(o.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("trust cache: %w", err)
	}
	c := &Client{o: o, isDir: !strings.HasPrefix(o.Remote, "http://") && !strings.HasPrefix(o.Remote, "https://")}
	if c.isDir {
		c.fetch = dirFetcher{dir: o.Remote}
	} else {
		df := fetcher.NewDefaultFetcher()
		if o.HTTPClient != nil {
			df.SetHTTPClient(o.HTTPClient)
		}
		// Fail fast: a repository that does not answer is an error, not a reason to wait.
		df.SetRetry(50*time.Millisecond, 1)
		c.fetch = df
	}
	return c, nil
}

func (c *Client) url(name string) string {
	if c.isDir {
		return filepath.Join(c.o.Remote, name)
	}
	return strings.TrimSuffix(c.o.Remote, "/") + "/" + name
}

// unchanged reports whether the repository still publishes the timestamp last verified, with no
// newer root, and all trusted metadata is unexpired. Any doubt answers false (full refresh).
func (c *Client) unchanged() bool {
	ts, err := c.fetch.DownloadFile(c.url("timestamp.json"), maxTimestamp, 0)
	if err != nil || !bytes.Equal(ts, c.lastTS) {
		return false
	}
	tm := c.last.GetTrustedMetadataSet()
	next := fmt.Sprintf("%d.root.json", tm.Root.Signed.Version+1)
	var nf *metadata.ErrDownloadHTTP
	if _, err := c.fetch.DownloadFile(c.url(next), maxRoot, 0); !errors.As(err, &nf) || nf.StatusCode != http.StatusNotFound {
		return false // a rotation to follow, or an answer we do not understand
	}
	now := time.Now()
	if tm.Root.Signed.IsExpired(now) || tm.Timestamp.Signed.IsExpired(now) || tm.Snapshot.Signed.IsExpired(now) {
		return false
	}
	for _, t := range tm.Targets {
		if t.Signed.IsExpired(now) {
			return false
		}
	}
	return true
}

// refreshed returns an updater that has completed the TUF refresh for this call, and whether
// that was a full refresh. Callers hold mu.
func (c *Client) refreshed() (*updater.Updater, bool, error) {
	if c.last != nil && !c.o.Offline && c.unchanged() {
		return c.last, false, nil
	}
	c.last, c.lastTS = nil, nil
	up, err := c.updater()
	if err != nil {
		return nil, false, err
	}
	if err := up.Refresh(); err != nil {
		return nil, false, fmt.Errorf("trust refresh: %w", classify(err))
	}
	if ts, err := os.ReadFile(filepath.Join(c.o.CacheDir, "timestamp.json")); err == nil && !c.o.Offline {
		c.last, c.lastTS = up, ts
	}
	return up, true, nil
}

// TargetPath is the target name a reference is looked up under (record.TargetPath).
func TargetPath(ref string) string { return record.TargetPath(ref) }

func (c *Client) updater() (*updater.Updater, error) {
	root := c.o.Root
	if cached, err := os.ReadFile(filepath.Join(c.o.CacheDir, "root.json")); err == nil {
		root = cached // verified by an earlier refresh before it was persisted
	}
	cfg, err := config.New(c.o.Remote, root)
	if err != nil {
		return nil, fmt.Errorf("trust client: %w", err)
	}
	cfg.LocalMetadataDir = c.o.CacheDir
	cfg.LocalTargetsDir = filepath.Join(c.o.CacheDir, "targets")
	cfg.UnsafeLocalMode = c.o.Offline
	cfg.Fetcher = c.fetch
	up, err := updater.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("trust client: pinned root: %w", classify(err))
	}
	return up, nil
}

// Resolve refreshes metadata and returns the signed target for ref, with the role that signed
// it. For NAME@DIGEST it also checks that the signed target is that digest. A new Client answers
// from the record of the last full refresh while nothing changed since (verified.go).
func (c *Client) Resolve(ref string) (*Target, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	path := TargetPath(ref)
	if c.last == nil {
		if t := c.fromRecord(path); t != nil {
			return t, nil
		}
	}
	up, full, err := c.refreshed()
	if err != nil {
		return nil, err
	}
	ti, err := up.GetTargetInfo(path)
	if err != nil {
		// go-tuf reports an unknown target, and a delegated role that never signed anything, as
		// plain errors; both mean nobody trusted for this path signed it.
		var r *metadata.ErrRepository
		msg := err.Error()
		if msg == fmt.Sprintf("target %s not found", path) || strings.HasSuffix(msg, "not found in snapshot") ||
			errors.As(err, &r) && strings.Contains(r.Msg, "does not contain information") {
			return nil, fmt.Errorf("%w: %s: %w", ErrTargetNotFound, path, err)
		}
		return nil, fmt.Errorf("trust lookup %s: %w", path, classify(err))
	}
	t, err := targetOf(path, ti)
	if err != nil {
		return nil, err
	}
	if t.Role, err = signerRole(up.GetTrustedMetadataSet(), path, ti); err != nil {
		return nil, err
	}
	if err := record.CheckPinned(path, t); err != nil {
		return nil, err
	}
	if full {
		c.record(up.GetTrustedMetadataSet(), path, t)
	}
	return t, nil
}

func targetOf(path string, ti *metadata.TargetFiles) (*Target, error) {
	h, ok := ti.Hashes["sha256"]
	if !ok || len(h) != 32 {
		return nil, fmt.Errorf("%w: target %s has no sha256", ErrRepository, path)
	}
	t := &Target{Name: path, Digest: digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h)), Length: ti.Length}
	if ti.Custom != nil {
		var c custom
		if err := json.Unmarshal(*ti.Custom, &c); err == nil {
			t.MediaType = c.MediaType
		}
	}
	return t, nil
}

// dirFetcher serves metadata from a local repository directory (no network).
type dirFetcher struct{ dir string }

func (f dirFetcher) DownloadFile(urlPath string, maxLength int64, _ time.Duration) ([]byte, error) {
	name := filepath.Base(urlPath)
	if name != strings.TrimPrefix(urlPath, strings.TrimSuffix(f.dir, "/")+"/") || strings.HasPrefix(name, ".") {
		return nil, &metadata.ErrDownload{Msg: fmt.Sprintf("metadata path %q is outside the repository", urlPath)}
	}
	fh, err := os.Open(filepath.Join(f.dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, &metadata.ErrDownloadHTTP{StatusCode: http.StatusNotFound, URL: urlPath}
	}
	if err != nil {
		return nil, &metadata.ErrDownload{Msg: err.Error()}
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxLength+1))
	if err != nil {
		return nil, &metadata.ErrDownload{Msg: err.Error()}
	}
	if int64(len(b)) > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s exceeds %d bytes", name, maxLength)}
	}
	return b, nil
}
