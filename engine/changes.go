package engine

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/engine/internal/gate"
	"bulwark.dev/bulwark/policy"
	"bulwark.dev/bulwark/signing"
)

// Changes to what the engine trusts and how it decides are audited like runs (issue 5: "trust
// and policy changes"): signing/ and policy/ know nothing of the audit log, so the engine
// records their changes, reading back the public state each change produced.

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
func RecordTrustChange(root string, id Identity, c TrustChange) error {
	attrs, err := trustAttrs(filepath.Join(root, "trust"), c)
	if err != nil {
		return fmt.Errorf("audit trust %s: %w", c.Action, err)
	}
	ev := changeEvent(id, audit.TypeTrust, c.Action, attrs)
	switch {
	case c.Target != nil:
		ev.ImageDigest = c.Target.Digest.String()
		if c.Role != "" && c.Role != metadata.TARGETS {
			ev.Tenant = c.Role
		}
	case c.Action == "delegate":
		ev.Tenant = c.Role
	}
	if err := appendChange(root, ev); err != nil {
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

// PreparePolicy is policy.NewEngine for a policy loaded against the state root (as `bulwark
// policy eval` does): when p is a signed bundle whose preparation raised the root's accepted
// bundle revision (the rollback floor policy/ records), that acceptance is appended to
// <root>/audit as policy.bundle-accepted. The audit log is opened only then, so evaluating the
// embedded policy or a directory touches nothing.
func PreparePolicy(ctx context.Context, root string, id Identity, p *policy.Policy, opts ...policy.Option) (*policy.Engine, error) {
	pe, attrs, err := preparePolicy(ctx, root, p, opts...)
	if err != nil || attrs == nil {
		return pe, err
	}
	if err := appendChange(root, changeEvent(id, audit.TypePolicy, "bundle-accepted", attrs)); err != nil {
		return nil, fmt.Errorf("policy bundle revision %s was accepted but not audited: %w", attrs["revision"], err)
	}
	return pe, nil
}

// preparePolicy is policy.NewEngine that also returns the attributes of a
// policy.bundle-accepted event when preparing p raised root's accepted bundle revision to p's
// (nil otherwise).
func preparePolicy(ctx context.Context, root string, p *policy.Policy, opts ...policy.Option) (*policy.Engine, map[string]string, error) {
	watch, err := gate.WatchBundle(root, p.Info)
	if err != nil {
		return nil, nil, err
	}
	pe, err := policy.NewEngine(ctx, p, opts...)
	if err != nil {
		return nil, nil, err
	}
	accepted, err := watch.Accepted()
	if err != nil {
		return nil, nil, err
	}
	return pe, accepted, nil
}

func changeEvent(id Identity, typ, action string, attrs map[string]string) audit.Event {
	uid := id.UID
	return audit.Event{Type: typ, Action: action, Actor: audit.Actor{UID: &uid, Principal: id.Principal}, Attrs: attrs}
}

// appendChange appends one event to <root>/audit, durably, before the command reports success.
func appendChange(root string, ev audit.Event) error {
	l, err := audit.Open(filepath.Join(root, "audit"), audit.Options{})
	if err != nil {
		return fmt.Errorf("open audit log: %w", err)
	}
	defer l.Close()
	_, err = l.Append(ev)
	return err
}
