package signing

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
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

// Client resolves references through TUF. Each Resolve performs a full refresh (root rotation,
// timestamp, snapshot, targets, delegations), as the TUF client workflow requires.
type Client struct {
	o ClientOptions
}

// NewClient checks the options and prepares the cache.
func NewClient(o ClientOptions) (*Client, error) {
	if len(o.Root) == 0 || o.Remote == "" || o.CacheDir == "" {
		return nil, errors.New("trust client: pinned root, remote and cache directory are required")
	}
	if err := os.MkdirAll(o.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("trust cache: %w", err)
	}
	return &Client{o: o}, nil
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

func (c *Client) updater() (*updater.Updater, error) {
	root := c.o.Root
	if cached, err := os.ReadFile(filepath.Join(c.o.CacheDir, "root.json")); err == nil {
		root = cached // verified by an earlier refresh before it was persisted
	}
	remote := c.o.Remote
	isDir := !strings.HasPrefix(remote, "http://") && !strings.HasPrefix(remote, "https://")
	cfg, err := config.New(remote, root)
	if err != nil {
		return nil, fmt.Errorf("trust client: %w", err)
	}
	cfg.LocalMetadataDir = c.o.CacheDir
	cfg.LocalTargetsDir = filepath.Join(c.o.CacheDir, "targets")
	cfg.UnsafeLocalMode = c.o.Offline
	switch {
	case isDir:
		cfg.Fetcher = dirFetcher{dir: remote}
	case c.o.HTTPClient != nil:
		if err := cfg.SetDefaultFetcherHTTPClient(c.o.HTTPClient); err != nil {
			return nil, err
		}
	}
	if !isDir {
		// Fail fast: a repository that does not answer is an error, not a reason to wait.
		if err := cfg.SetDefaultFetcherRetry(50*time.Millisecond, 1); err != nil {
			return nil, err
		}
	}
	up, err := updater.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("trust client: pinned root: %w", classify(err))
	}
	return up, nil
}

// Resolve refreshes metadata and returns the signed target for ref. For NAME@DIGEST it also
// checks that the signed target is that digest.
func (c *Client) Resolve(ref string) (*Target, error) {
	up, err := c.updater()
	if err != nil {
		return nil, err
	}
	if err := up.Refresh(); err != nil {
		return nil, fmt.Errorf("trust refresh: %w", classify(err))
	}
	path := TargetPath(ref)
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
	if i := strings.IndexByte(path, '@'); i >= 0 && string(t.Digest) != path[i+1:] {
		return nil, fmt.Errorf("%w: %s is signed as %s", ErrDigestMismatch, path, t.Digest)
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
