package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"bulwark.dev/bulwark/signing"
)

// trustView is the TUF metadata a scan verified, read-only, from the state root's trust
// directory: the repository directory the client is configured with when it is local (what the
// next resolution would fetch), else the client's cache (a scan never fetches). Signatures,
// thresholds, versions and hashes are checked by go-tuf's trusted-metadata set with its
// reference time before every expiry, so that "signed" and "fresh" are two results (the images
// and the expiry controls), not one failure hiding the other.
type trustView struct {
	md          *trustedmetadata.TrustedMetadata
	source      string
	rootVersion int64
	// expires holds every verified role's expiry.
	expires map[string]time.Time
	err     error
}

// trust verifies the trust metadata once per scan.
func (e *Env) trust() *trustView {
	if e.trustCache == nil {
		e.trustCache = loadTrust(filepath.Join(e.Root, "trust"))
	}
	return e.trustCache
}

func loadTrust(dir string) *trustView {
	tv := &trustView{expires: map[string]time.Time{}}
	tv.err = tv.load(dir)
	return tv
}

func (tv *trustView) load(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "client.json"))
	if err != nil {
		return fmt.Errorf("no trust configured: %w", err)
	}
	var cfg signing.ClientConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("client.json: %w", err)
	}
	cache := filepath.Join(dir, "cache")
	root, err := os.ReadFile(filepath.Join(cache, "root.json"))
	if errors.Is(err, os.ErrNotExist) {
		root, err = os.ReadFile(filepath.Join(dir, "pinned-root.json"))
	}
	if err != nil {
		return fmt.Errorf("trusted root: %w", err)
	}
	md, err := trustedmetadata.New(root)
	if err != nil {
		return fmt.Errorf("trusted root: %w", err)
	}
	// Before every expiry: expiry is the expiry control's result, not this one's.
	md.RefTime = time.Unix(0, 0)
	tv.md = md
	local := !strings.HasPrefix(cfg.Remote, "http://") && !strings.HasPrefix(cfg.Remote, "https://")
	read := func(role string, version int64) ([]byte, error) {
		if !local {
			return os.ReadFile(filepath.Join(cache, role+".json"))
		}
		if version > 0 {
			return os.ReadFile(filepath.Join(cfg.Remote, strconv.FormatInt(version, 10)+"."+role+".json"))
		}
		return os.ReadFile(filepath.Join(cfg.Remote, role+".json"))
	}
	if local {
		tv.source = "repository " + cfg.Remote
		// Newer roots, each verified by the one before (an expired intermediate root is fine).
		for {
			next, err := os.ReadFile(filepath.Join(cfg.Remote, strconv.FormatInt(md.Root.Signed.Version+1, 10)+".root.json"))
			if errors.Is(err, os.ErrNotExist) {
				break
			}
			if err != nil {
				return err
			}
			if _, err := md.UpdateRoot(next); err != nil {
				return fmt.Errorf("root v%d: %w", md.Root.Signed.Version+1, err)
			}
		}
	} else {
		tv.source = "cache of " + cfg.Remote
	}
	tv.rootVersion = md.Root.Signed.Version
	tv.expires[metadata.ROOT] = md.Root.Signed.Expires
	tsb, err := read(metadata.TIMESTAMP, 0)
	if err != nil {
		return fmt.Errorf("timestamp: %w", err)
	}
	ts, err := md.UpdateTimestamp(tsb)
	if err != nil {
		return fmt.Errorf("timestamp: %w", err)
	}
	tv.expires[metadata.TIMESTAMP] = ts.Signed.Expires
	snb, err := read(metadata.SNAPSHOT, ts.Signed.Meta["snapshot.json"].Version)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	snap, err := md.UpdateSnapshot(snb, false)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	tv.expires[metadata.SNAPSHOT] = snap.Signed.Expires
	tgb, err := read(metadata.TARGETS, snap.Signed.Meta["targets.json"].Version)
	if err != nil {
		return fmt.Errorf("targets: %w", err)
	}
	top, err := md.UpdateTargets(tgb)
	if err != nil {
		return fmt.Errorf("targets: %w", err)
	}
	tv.expires[metadata.TARGETS] = top.Signed.Expires
	if top.Signed.Delegations == nil {
		return nil
	}
	for _, d := range top.Signed.Delegations.Roles {
		mf, ok := snap.Signed.Meta[d.Name+".json"]
		if !ok {
			continue // a tenant that never signed anything
		}
		db, err := read(d.Name, mf.Version)
		if err != nil {
			return fmt.Errorf("delegated role %s: %w", d.Name, err)
		}
		dmd, err := md.UpdateDelegatedTargets(db, d.Name, metadata.TARGETS)
		if err != nil {
			return fmt.Errorf("delegated role %s: %w", d.Name, err)
		}
		tv.expires[d.Name] = dmd.Signed.Expires
	}
	return nil
}

// lookup finds the signed target for ref: the top-level targets, then the delegated roles
// trusted for its path (one level, as Bulwark's tenants are delegated). It returns the digest
// signed and the role that signed it.
func (tv *trustView) lookup(ref string) (digest, role string, err error) {
	path := signing.TargetPath(ref)
	top := tv.md.Targets[metadata.TARGETS]
	if t, ok := top.Signed.Targets[path]; ok {
		return sha256Of(t), metadata.TARGETS, nil
	}
	if top.Signed.Delegations != nil {
		for _, d := range top.Signed.Delegations.Roles {
			if ok, _ := d.IsDelegatedPath(path); !ok {
				continue
			}
			if dm, ok := tv.md.Targets[d.Name]; ok {
				if t, ok := dm.Signed.Targets[path]; ok {
					return sha256Of(t), d.Name, nil
				}
			}
		}
	}
	return "", "", fmt.Errorf("%s is not signed", path)
}

func sha256Of(t *metadata.TargetFiles) string {
	h, ok := t.Hashes["sha256"]
	if !ok {
		return ""
	}
	return "sha256:" + h.String()
}
