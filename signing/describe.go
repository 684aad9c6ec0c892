package signing

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// RoleInfo is the public state of one role after a change, for the audit trail: its metadata
// version, threshold, key ids and (for a delegated role) paths. Never private key material.
type RoleInfo struct {
	Role      string   `json:"role"`
	Version   int64    `json:"version"`
	Threshold int      `json:"threshold"`
	KeyIDs    []string `json:"key_ids"`
	Paths     []string `json:"paths,omitempty"`
}

// Describe reports the published state of role: a top-level role (keys from the newest root)
// or a tenant's delegated role (keys and paths from the top-level targets; version 0 until the
// tenant signs something).
func (r *Repo) Describe(role string) (RoleInfo, error) {
	if !contains(topRoles, role) {
		top, err := r.LoadTargets(metadata.TARGETS)
		if err != nil {
			return RoleInfo{}, err
		}
		dr, err := delegatedRole(top, role)
		if err != nil {
			return RoleInfo{}, err
		}
		md, err := r.LoadTargets(role)
		if err != nil {
			return RoleInfo{}, err
		}
		return RoleInfo{Role: role, Version: md.Signed.Version, Threshold: dr.Threshold, KeyIDs: sorted(dr.KeyIDs), Paths: dr.Paths}, nil
	}
	root, err := r.LoadRoot()
	if err != nil {
		return RoleInfo{}, err
	}
	rr := root.Signed.Roles[role]
	info := RoleInfo{Role: role, Threshold: rr.Threshold, KeyIDs: sorted(rr.KeyIDs)}
	switch role {
	case metadata.ROOT:
		info.Version = root.Signed.Version
	case metadata.TARGETS:
		md, err := r.LoadTargets(role)
		if err != nil {
			return RoleInfo{}, err
		}
		info.Version = md.Signed.Version
	case metadata.SNAPSHOT:
		md, err := r.LoadSnapshot()
		if err != nil {
			return RoleInfo{}, err
		}
		info.Version = md.Signed.Version
	case metadata.TIMESTAMP:
		md, err := r.LoadTimestamp()
		if err != nil {
			return RoleInfo{}, err
		}
		info.Version = md.Signed.Version
	}
	return info, nil
}

// PinInfo is what a trust directory's client is pinned to (see Pin).
type PinInfo struct {
	Remote string
	// RootDigest is the sha256 of the pinned root.json bytes.
	RootDigest string
	Root       RoleInfo
}

// Pinned reports the repository and root the trust directory's client is pinned to.
func Pinned(trustDir string) (PinInfo, error) {
	b, err := os.ReadFile(filepath.Join(trustDir, "client.json"))
	if err != nil {
		return PinInfo{}, fmt.Errorf("no trust configured: %w", err)
	}
	var cfg ClientConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return PinInfo{}, fmt.Errorf("parse client.json: %w", err)
	}
	raw, err := os.ReadFile(filepath.Join(trustDir, "pinned-root.json"))
	if err != nil {
		return PinInfo{}, fmt.Errorf("pinned root: %w", err)
	}
	root, err := metadata.Root().FromBytes(raw)
	if err != nil {
		return PinInfo{}, fmt.Errorf("pinned root: %w", err)
	}
	sum := sha256.Sum256(raw)
	rr := root.Signed.Roles[metadata.ROOT]
	return PinInfo{
		Remote:     cfg.Remote,
		RootDigest: "sha256:" + hex.EncodeToString(sum[:]),
		Root:       RoleInfo{Role: metadata.ROOT, Version: root.Signed.Version, Threshold: rr.Threshold, KeyIDs: sorted(rr.KeyIDs)},
	}, nil
}

func sorted(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}
