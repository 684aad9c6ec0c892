package signing

import (
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

// TrustedRole is one role as this client has verified it (never the repository's own files).
type TrustedRole struct {
	Role      string    `json:"role"`
	Version   int64     `json:"version"`
	Expires   time.Time `json:"expires,omitzero"`
	Expired   bool      `json:"expired"`
	Threshold int       `json:"threshold"`
	KeyIDs    []string  `json:"key_ids"`
	// Paths are a delegated role's path patterns (a tenant's role: "TENANT/*").
	Paths []string `json:"paths,omitempty"`
	// Delegated: a role the top-level targets role delegates to (version 0: it never signed).
	Delegated bool `json:"delegated,omitempty"`
}

// TrustedTarget is a signed target and the role that signed it.
type TrustedTarget struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
	Length int64  `json:"length"`
	Role   string `json:"role"`
}

// TrustedView is the verified state of the pinned repository: every role's version and expiry,
// and every signed target.
type TrustedView struct {
	Roles   []TrustedRole   `json:"roles"`
	Targets []TrustedTarget `json:"targets"`
}

// Trusted refreshes the metadata as a Resolve does and reports what it verified: the top-level
// roles, each delegated role of the top-level targets (its metadata fetched and verified
// against the snapshot and its delegator when the refresh had not loaded it), and their targets.
func (c *Client) Trusted() (*TrustedView, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	up, _, err := c.refreshed()
	if err != nil {
		return nil, err
	}
	tm := up.GetTrustedMetadataSet()
	now := time.Now()
	v := &TrustedView{}
	role := func(name string, version int64, expires time.Time) {
		rr := tm.Root.Signed.Roles[name]
		r := TrustedRole{Role: name, Version: version, Expires: expires, Expired: now.After(expires)}
		if rr != nil {
			r.Threshold, r.KeyIDs = rr.Threshold, sorted(rr.KeyIDs)
		}
		v.Roles = append(v.Roles, r)
	}
	top := tm.Targets[metadata.TARGETS]
	if top == nil {
		return nil, fmt.Errorf("%w: the refresh left no trusted targets metadata", ErrRepository)
	}
	role(metadata.ROOT, tm.Root.Signed.Version, tm.Root.Signed.Expires)
	role(metadata.TARGETS, top.Signed.Version, top.Signed.Expires)
	role(metadata.SNAPSHOT, tm.Snapshot.Signed.Version, tm.Snapshot.Signed.Expires)
	role(metadata.TIMESTAMP, tm.Timestamp.Signed.Version, tm.Timestamp.Signed.Expires)
	v.addTargets(metadata.TARGETS, top)
	if top.Signed.Delegations == nil {
		return v, nil
	}
	for _, d := range top.Signed.Delegations.Roles {
		r := TrustedRole{Role: d.Name, Threshold: d.Threshold, KeyIDs: sorted(d.KeyIDs), Paths: d.Paths, Delegated: true}
		md, err := c.delegated(&tm, d.Name)
		if err != nil {
			return nil, fmt.Errorf("trust: delegated role %s: %w", d.Name, classify(err))
		}
		if md != nil {
			r.Version, r.Expires, r.Expired = md.Signed.Version, md.Signed.Expires, now.After(md.Signed.Expires)
			v.addTargets(d.Name, md)
		}
		v.Roles = append(v.Roles, r)
	}
	return v, nil
}

// delegated is the verified metadata of a role the top-level targets delegate to: the one the
// refresh loaded, else fetched and verified now (as go-tuf's own walk does); nil when the
// snapshot lists none (the role never signed anything).
func (c *Client) delegated(tm *trustedmetadata.TrustedMetadata, name string) (*metadata.Metadata[metadata.TargetsType], error) {
	if md, ok := tm.Targets[name]; ok {
		return md, nil
	}
	meta, ok := tm.Snapshot.Signed.Meta[name+".json"]
	if !ok {
		return nil, nil
	}
	file := name + ".json"
	if tm.Root.Signed.ConsistentSnapshot {
		file = strconv.FormatInt(meta.Version, 10) + "." + file
	}
	length := meta.Length
	if length == 0 {
		length = 5 << 20
	}
	data, err := c.fetch.DownloadFile(c.url(file), length, 0)
	if err != nil {
		return nil, err
	}
	return tm.UpdateDelegatedTargets(data, name, metadata.TARGETS)
}

func (v *TrustedView) addTargets(role string, md *metadata.Metadata[metadata.TargetsType]) {
	names := make([]string, 0, len(md.Signed.Targets))
	for n := range md.Signed.Targets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t, err := targetOf(n, md.Signed.Targets[n])
		if err != nil {
			continue // no sha256: never resolvable, so never usable
		}
		v.Targets = append(v.Targets, TrustedTarget{Name: n, Digest: t.Digest.String(), Length: t.Length, Role: role})
	}
}
