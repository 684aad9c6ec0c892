// Package truststate is a state root's trust as bulwarkd and `bulwark trust` see it: the status a
// run verifies against, and the audit events of the changes `bulwark trust` makes below
// <root>/trust. It links go-tuf and sigstore (signing), which engine — and so the bulwark CLI's
// run path — does not.
package truststate

import (
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/engine/internal/gate"
	"bulwark.dev/bulwark/signing"
	"bulwark.dev/bulwark/signing/record"
)

// TrustChange is one change `bulwark trust` made below <root>/trust.
type TrustChange struct {
	// Action is the subcommand: init, sign, delegate, rotate, refresh or pin.
	Action string
	// Role is the role concerned: sign, the role that signed ("" for the top-level targets);
	// delegate, the tenant; rotate, the role whose keys were replaced.
	Role string
	// Target is what sign signed.
	Target *signing.Target
}

// RecordTrustChange appends a "trust" event for a change just made: action, the role with its
// new version, threshold and key ids, the repository's timestamp version (which names the
// published state), and what the action is about (target, digest, delegated paths, pinned root
// and remote). Key ids and digests only: no private key material is ever read here.
func RecordTrustChange(root string, id engine.Identity, c TrustChange) error {
	attrs, err := trustAttrs(filepath.Join(root, "trust"), c)
	if err != nil {
		return fmt.Errorf("audit trust %s: %w", c.Action, err)
	}
	ev := engine.ChangeEvent(id, audit.TypeTrust, c.Action, attrs)
	switch {
	case c.Target != nil:
		ev.ImageDigest = c.Target.Digest.String()
		if c.Role != "" && c.Role != metadata.TARGETS {
			ev.Tenant = c.Role
		}
	case c.Action == "delegate":
		ev.Tenant = c.Role
	}
	if err := engine.AppendChange(root, ev); err != nil {
		return fmt.Errorf("trust %s was made but not audited: %w", c.Action, err)
	}
	return nil
}

func trustAttrs(trustDir string, c TrustChange) (map[string]string, error) {
	attrs := map[string]string{}
	role := func(ri signing.RoleInfo) {
		attrs["role"] = ri.Role
		attrs["version"] = strconv.FormatInt(ri.Version, 10)
		attrs["threshold"] = strconv.Itoa(ri.Threshold)
		attrs["key_ids"] = gate.JSONString(ri.KeyIDs)
		if len(ri.Paths) > 0 {
			attrs["paths"] = gate.JSONString(ri.Paths)
		}
	}
	pinned := func() error {
		pin, err := signing.Pinned(trustDir)
		if err != nil {
			return err
		}
		attrs["remote"], attrs["root_digest"] = pin.Remote, pin.RootDigest
		role(pin.Root)
		return nil
	}
	if c.Action == "pin" {
		// A pinned repository may be remote: only the pin itself is known here.
		return attrs, pinned()
	}
	repo := signing.NewRepo(trustDir)
	describe := func(name string) (signing.RoleInfo, error) {
		ri, err := repo.Describe(name)
		if err != nil {
			return ri, fmt.Errorf("describe role %s: %w", name, err)
		}
		return ri, nil
	}
	ts, err := describe(metadata.TIMESTAMP)
	if err != nil {
		return nil, err
	}
	attrs["timestamp_version"] = strconv.FormatInt(ts.Version, 10)
	name := c.Role
	switch c.Action {
	case "init":
		// Init pins the new repository too: record the pin and every top-level role's keys.
		if err := pinned(); err != nil {
			return nil, err
		}
		var all []signing.RoleInfo
		for _, r := range []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP} {
			ri, err := describe(r)
			if err != nil {
				return nil, err
			}
			all = append(all, ri)
		}
		attrs["roles"] = gate.JSONString(all)
		return attrs, nil
	case "sign":
		if name == "" {
			name = metadata.TARGETS
		}
		if c.Target != nil {
			attrs["target"], attrs["digest"] = c.Target.Name, c.Target.Digest.String()
			attrs["length"], attrs["media_type"] = strconv.FormatInt(c.Target.Length, 10), c.Target.MediaType
		}
	case "delegate":
		// Delegating re-signs the top-level targets with the tenant's key and paths in it.
		top, err := describe(metadata.TARGETS)
		if err != nil {
			return nil, err
		}
		attrs["targets_version"] = strconv.FormatInt(top.Version, 10)
	case "rotate":
		// Every rotation publishes a new root listing the role's new keys.
		r, err := describe(metadata.ROOT)
		if err != nil {
			return nil, err
		}
		attrs["root_version"] = strconv.FormatInt(r.Version, 10)
	case "refresh":
		snap, err := describe(metadata.SNAPSHOT)
		if err != nil {
			return nil, err
		}
		attrs["snapshot_version"] = strconv.FormatInt(snap.Version, 10)
		name = metadata.TIMESTAMP
	default:
		return nil, fmt.Errorf("unknown trust change %q", c.Action)
	}
	ri, err := describe(name)
	if err != nil {
		return nil, err
	}
	role(ri)
	return attrs, nil
}

// TrustStatus is the state root's trust as a run would see it: the repository and root it is
// pinned to, and the metadata verified by a refresh (every role's version and expiry, every
// signed target and the role that signed it).
type TrustStatus struct {
	Pin      signing.PinInfo
	Verified *signing.TrustedView
}

// Status refreshes the pinned repository's metadata of the state root under the metadata cache's
// lock, as a run's resolution does, and reports it.
func Status(root string) (*TrustStatus, error) {
	dir := filepath.Join(root, "trust")
	pin, err := signing.Pinned(dir)
	if err != nil {
		return nil, err
	}
	client, err := signing.OpenClient(dir, false)
	if err != nil {
		return nil, err
	}
	unlock, err := record.LockCache(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	v, err := client.Trusted()
	if err != nil {
		return nil, err
	}
	return &TrustStatus{Pin: pin, Verified: v}, nil
}
