package signing

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Delegate makes tenant a delegated targets role trusted for paths (each must lie below
// "tenant/"), with pub as its single key. Re-delegating replaces key and paths.
func (r *Repo) Delegate(tenant string, pub *metadata.Key, paths []string) error {
	if !validTenant(tenant) || contains(topRoles, tenant) {
		return fmt.Errorf("delegate: invalid tenant name %q", tenant)
	}
	if len(paths) == 0 {
		return fmt.Errorf("delegate %s: at least one path pattern is required", tenant)
	}
	for _, p := range paths {
		// A tenant is confined to its own namespace; "*" or "other/*" would let it sign others'.
		if !strings.HasPrefix(p, tenant+"/") {
			return fmt.Errorf("%w: path pattern %q is outside %s/", ErrNotDelegated, p, tenant)
		}
	}
	id, err := pub.ID()
	if err != nil {
		return err
	}
	unlock, err := r.lock()
	if err != nil {
		return err
	}
	defer unlock()
	top, err := r.LoadTargets(metadata.TARGETS)
	if err != nil {
		return err
	}
	if top.Signed.Delegations == nil {
		top.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}}
	}
	d := top.Signed.Delegations
	kept := d.Roles[:0]
	for _, role := range d.Roles {
		if role.Name != tenant {
			kept = append(kept, role)
		}
	}
	d.Roles = append(kept, metadata.DelegatedRole{Name: tenant, KeyIDs: []string{id}, Threshold: 1, Terminating: true, Paths: paths})
	d.Keys[id] = pub
	pruneDelegationKeys(d)
	return r.commit(map[string]*metadata.Metadata[metadata.TargetsType]{metadata.TARGETS: top}, nil, false)
}

func pruneDelegationKeys(d *metadata.Delegations) {
	used := map[string]bool{}
	for _, role := range d.Roles {
		for _, id := range role.KeyIDs {
			used[id] = true
		}
	}
	for id := range d.Keys {
		if !used[id] {
			delete(d.Keys, id)
		}
	}
}

// Rotate replaces every key of a top-level role with as many new ones, publishes a new root
// signed by the old root keys (and, for root, the new ones too, as clients require), and re-signs
// the role's metadata with the new keys. Old private keys move to keys/<role>/retired/.
func (r *Repo) Rotate(role string) error {
	if !contains(topRoles, role) {
		return fmt.Errorf("rotate: %q is not a top-level role (re-run trust delegate for a tenant)", role)
	}
	unlock, err := r.lock()
	if err != nil {
		return err
	}
	defer unlock()
	root, err := r.LoadRoot()
	if err != nil {
		return err
	}
	rr := root.Signed.Roles[metadata.ROOT]
	oldRootSigners, err := r.signers(metadata.ROOT, rr.KeyIDs, rr.Threshold)
	if err != nil {
		return err
	}
	old := append([]string(nil), root.Signed.Roles[role].KeyIDs...)
	var fresh []*PrivateKey
	for range old {
		k, err := GenerateKey()
		if err != nil {
			return err
		}
		if err := k.WritePrivate(filepath.Join(r.keyDir(role), k.ID[:16]+".key")); err != nil {
			return err
		}
		fresh = append(fresh, k)
	}
	for _, id := range old {
		if err := root.Signed.RevokeKey(id, role); err != nil {
			return fmt.Errorf("rotate %s: revoke %s: %w", role, id, err)
		}
	}
	for _, k := range fresh {
		if err := root.Signed.AddKey(k.Pub, role); err != nil {
			return err
		}
	}
	root.Signed.Version++
	root.Signed.Expires = r.expires(metadata.ROOT)
	signers := oldRootSigners
	if role == metadata.ROOT {
		signers = append(signers, fresh...)
	}
	if err := signAndWrite(r.Dir, root, metadata.ROOT, signers); err != nil {
		return err
	}
	if err := r.retire(role, old); err != nil {
		return err
	}
	switch role {
	case metadata.TARGETS:
		top, err := r.LoadTargets(metadata.TARGETS)
		if err != nil {
			return err
		}
		return r.commit(map[string]*metadata.Metadata[metadata.TargetsType]{metadata.TARGETS: top}, nil, false)
	case metadata.SNAPSHOT:
		return r.commit(nil, nil, false)
	case metadata.TIMESTAMP:
		ts, err := r.LoadTimestamp()
		if err != nil {
			return err
		}
		return r.bumpTimestamp(ts.Signed.Meta["snapshot.json"].Version, false)
	}
	return nil
}

func (r *Repo) retire(role string, ids []string) error {
	dir := r.keyDir(role)
	keys, err := loadRoleKeys(dir)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if contains(ids, k.ID) {
			if err := os.MkdirAll(filepath.Join(dir, "retired"), 0o700); err != nil {
				return err
			}
			name := k.ID[:16] + ".key"
			if err := os.Rename(filepath.Join(dir, name), filepath.Join(dir, "retired", name)); err != nil {
				return fmt.Errorf("retire key %s: %w", name, err)
			}
			os.Rename(filepath.Join(dir, name+".pub"), filepath.Join(dir, "retired", name+".pub"))
		}
	}
	return nil
}

// Refresh re-signs what is about to expire: the snapshot when less than half its lifetime is
// left, and always the timestamp. Run it periodically (e.g. hourly) so clients never see a frozen
// repository; without it the timestamp expires after a day and every verification fails closed.
func (r *Repo) Refresh() error {
	unlock, err := r.lock()
	if err != nil {
		return err
	}
	defer unlock()
	snap, err := r.LoadSnapshot()
	if err != nil {
		return err
	}
	if snap.Signed.Expires.Sub(r.Now()) < DefaultExpiry[metadata.SNAPSHOT]/2 {
		return r.commit(nil, nil, false)
	}
	ts, err := r.LoadTimestamp()
	if err != nil {
		return err
	}
	return r.bumpTimestamp(ts.Signed.Meta["snapshot.json"].Version, false)
}

// RoleStatus is one line of `trust status`.
type RoleStatus struct {
	Role      string    `json:"role"`
	Version   int64     `json:"version"`
	Expires   time.Time `json:"expires"`
	Threshold int       `json:"threshold"`
	Keys      int       `json:"keys"`
	Paths     []string  `json:"paths,omitempty"`
	Targets   int       `json:"targets"`
	Expired   bool      `json:"expired"`
}

// Status reports version and expiry of every role.
func (r *Repo) Status() ([]RoleStatus, error) {
	root, err := r.LoadRoot()
	if err != nil {
		return nil, err
	}
	ts, err := r.LoadTimestamp()
	if err != nil {
		return nil, err
	}
	snap, err := r.LoadSnapshot()
	if err != nil {
		return nil, err
	}
	top, err := r.LoadTargets(metadata.TARGETS)
	if err != nil {
		return nil, err
	}
	now := r.Now()
	line := func(role string, v int64, exp time.Time, targets int) RoleStatus {
		rr := root.Signed.Roles[role]
		return RoleStatus{Role: role, Version: v, Expires: exp, Threshold: rr.Threshold, Keys: len(rr.KeyIDs), Targets: targets, Expired: now.After(exp)}
	}
	out := []RoleStatus{
		line(metadata.ROOT, root.Signed.Version, root.Signed.Expires, 0),
		line(metadata.TARGETS, top.Signed.Version, top.Signed.Expires, len(top.Signed.Targets)),
		line(metadata.SNAPSHOT, snap.Signed.Version, snap.Signed.Expires, 0),
		line(metadata.TIMESTAMP, ts.Signed.Version, ts.Signed.Expires, 0),
	}
	if top.Signed.Delegations != nil {
		for _, d := range top.Signed.Delegations.Roles {
			st := RoleStatus{Role: d.Name, Threshold: d.Threshold, Keys: len(d.KeyIDs), Paths: d.Paths}
			if _, ok := snap.Signed.Meta[d.Name+".json"]; ok {
				if md, err := r.LoadTargets(d.Name); err == nil {
					st.Version, st.Expires, st.Targets, st.Expired = md.Signed.Version, md.Signed.Expires, len(md.Signed.Targets), now.After(md.Signed.Expires)
				}
			}
			out = append(out, st)
		}
	}
	return out, nil
}
