// Package signing resolves image references to manifest digests through The Update Framework
// (go-tuf/v2): it maintains a TUF repository (keys, signed metadata, tenant delegations, key
// rotation) and verifies references against it as a client with a pinned root.
//
// A target is named "NAME:TAG" and, for running by digest, "NAME@sha256:HEX"; both carry the
// manifest's length and sha256 and its media type in custom. A delegated role per tenant may sign
// only the paths it was delegated (e.g. "tenant/*").
package signing

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/atomicfile"
	"bulwark.dev/bulwark/signing/record"
)

// Default lifetimes of freshly signed metadata: the timestamp is short so a frozen mirror is
// noticed within a day.
var DefaultExpiry = map[string]time.Duration{
	metadata.ROOT:      365 * 24 * time.Hour,
	metadata.TARGETS:   90 * 24 * time.Hour,
	metadata.SNAPSHOT:  7 * 24 * time.Hour,
	metadata.TIMESTAMP: 24 * time.Hour,
}

var topRoles = []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP}

// tenantRE is a tenant name's alphabet; validTenant checks its length apart (a counted repetition
// compiles to a large program at every start of a binary linking this package).
var tenantRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// validTenant reports whether name is [a-z0-9][a-z0-9-]{0,62}.
func validTenant(name string) bool { return len(name) <= 63 && tenantRE.MatchString(name) }

// Repo is a TUF repository on disk: Dir holds the published metadata (consistent snapshots:
// N.root.json, N.targets.json, N.<tenant>.json, N.snapshot.json, timestamp.json) and Keys the
// private keys, keys/<role>/<keyid>.key, mode 0600. The root keys may live elsewhere (RootKeys),
// e.g. on removable media, as they are needed only for init and rotation.
type Repo struct {
	Dir      string
	Keys     string
	RootKeys string
	// Now is the clock for expiry (tests move it).
	Now func() time.Time
}

// InitOptions configures a new repository.
type InitOptions struct {
	Threshold int // signatures required per top-level role (default 1)
	Keys      int // keys generated per top-level role (default = Threshold)
}

// Target is what a reference resolves to.
type Target = record.Target

type custom struct {
	MediaType string `json:"mediaType"`
}

// NewRepo describes the repository below a state root's trust directory.
func NewRepo(trustDir string) *Repo {
	return &Repo{Dir: filepath.Join(trustDir, "repo"), Keys: filepath.Join(trustDir, "keys"), Now: time.Now}
}

func (r *Repo) rootKeys() string {
	if r.RootKeys != "" {
		return r.RootKeys
	}
	return filepath.Join(r.Keys, metadata.ROOT)
}

func (r *Repo) keyDir(role string) string {
	if role == metadata.ROOT {
		return r.rootKeys()
	}
	return filepath.Join(r.Keys, role)
}

func (r *Repo) expires(role string) time.Time {
	d, ok := DefaultExpiry[role]
	if !ok {
		d = DefaultExpiry[metadata.TARGETS]
	}
	return r.Now().UTC().Add(d).Truncate(time.Second)
}

// lock serialises writers of one repository.
func (r *Repo) lock() (func(), error) {
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(filepath.Dir(r.Dir), "repo.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// Init creates keys and the first signed metadata. It refuses to overwrite a repository.
func (r *Repo) Init(o InitOptions) error {
	if o.Threshold <= 0 {
		o.Threshold = 1
	}
	if o.Keys <= 0 {
		o.Keys = o.Threshold
	}
	if o.Keys < o.Threshold {
		return fmt.Errorf("trust init: %d keys cannot meet threshold %d", o.Keys, o.Threshold)
	}
	unlock, err := r.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(r.Dir, "1.root.json")); err == nil {
		return fmt.Errorf("trust init: a repository already exists in %s", r.Dir)
	}
	root := metadata.Root(r.expires(metadata.ROOT))
	for _, role := range topRoles {
		for i := 0; i < o.Keys; i++ {
			k, err := GenerateKey()
			if err != nil {
				return err
			}
			if err := k.WritePrivate(filepath.Join(r.keyDir(role), k.ID[:16]+".key")); err != nil {
				return err
			}
			if err := root.Signed.AddKey(k.Pub, role); err != nil {
				return err
			}
		}
		root.Signed.Roles[role].Threshold = o.Threshold
	}
	if err := r.signWrite(root, metadata.ROOT, nil); err != nil {
		return err
	}
	targets := metadata.Targets(r.expires(metadata.TARGETS))
	return r.commit(map[string]*metadata.Metadata[metadata.TargetsType]{metadata.TARGETS: targets}, nil, true)
}

// signers loads the keys of role that root lists and checks they can meet its threshold.
func (r *Repo) signers(role string, keyIDs []string, threshold int) ([]*PrivateKey, error) {
	all, err := loadRoleKeys(r.keyDir(role))
	if err != nil {
		return nil, fmt.Errorf("keys for %s: %w", role, err)
	}
	var use []*PrivateKey
	for _, k := range all {
		for _, id := range keyIDs {
			if k.ID == id {
				use = append(use, k)
			}
		}
	}
	if len(use) < threshold {
		return nil, fmt.Errorf("%w: %s needs %d signatures, %d of its keys are available in %s", ErrThreshold, role, threshold, len(use), r.keyDir(role))
	}
	return use, nil
}

type signable interface {
	ClearSignatures()
}

// signWrite signs md with the role's keys (or the given ones) and writes it.
func (r *Repo) signWrite(md any, role string, keys []*PrivateKey) error {
	if keys == nil {
		root, err := r.loadRootOrNew(md)
		if err != nil {
			return err
		}
		rr := root.Signed.Roles[role]
		if rr == nil {
			return fmt.Errorf("role %s is not a top-level role", role)
		}
		if keys, err = r.signers(role, rr.KeyIDs, rr.Threshold); err != nil {
			return err
		}
	}
	return signAndWrite(r.Dir, md, role, keys)
}

func (r *Repo) loadRootOrNew(md any) (*metadata.Metadata[metadata.RootType], error) {
	if root, ok := md.(*metadata.Metadata[metadata.RootType]); ok && root.Signed.Version == 1 {
		return root, nil
	}
	return r.LoadRoot()
}

// signAndWrite signs with keys and writes the file under its consistent-snapshot name.
func signAndWrite(dir string, md any, role string, keys []*PrivateKey) error {
	md.(signable).ClearSignatures()
	var (
		version int64
		write   func(string) error
	)
	sign := func(k *PrivateKey) error {
		s, err := k.Signer()
		if err != nil {
			return err
		}
		switch m := md.(type) {
		case *metadata.Metadata[metadata.RootType]:
			_, err = m.Sign(s)
		case *metadata.Metadata[metadata.TargetsType]:
			_, err = m.Sign(s)
		case *metadata.Metadata[metadata.SnapshotType]:
			_, err = m.Sign(s)
		case *metadata.Metadata[metadata.TimestampType]:
			_, err = m.Sign(s)
		}
		return err
	}
	for _, k := range keys {
		if err := sign(k); err != nil {
			return fmt.Errorf("sign %s: %w", role, err)
		}
	}
	switch m := md.(type) {
	case *metadata.Metadata[metadata.RootType]:
		version, write = m.Signed.Version, func(p string) error { return writeMeta(p, m) }
	case *metadata.Metadata[metadata.TargetsType]:
		version, write = m.Signed.Version, func(p string) error { return writeMeta(p, m) }
	case *metadata.Metadata[metadata.SnapshotType]:
		version, write = m.Signed.Version, func(p string) error { return writeMeta(p, m) }
	case *metadata.Metadata[metadata.TimestampType]:
		return writeMeta(filepath.Join(dir, "timestamp.json"), m)
	}
	if err := write(filepath.Join(dir, fmt.Sprintf("%d.%s.json", version, role))); err != nil {
		return err
	}
	if role == metadata.ROOT {
		return write(filepath.Join(dir, "root.json")) // the newest root, for pinning
	}
	return nil
}

type toBytes interface {
	ToBytes(pretty bool) ([]byte, error)
}

func writeMeta(path string, m toBytes) error {
	b, err := m.ToBytes(true)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, b, atomicfile.Options{Perm: 0o644})
}

// LoadRoot reads the newest N.root.json.
func (r *Repo) LoadRoot() (*metadata.Metadata[metadata.RootType], error) {
	ents, err := os.ReadDir(r.Dir)
	if err != nil {
		return nil, fmt.Errorf("trust repository %s: %w", r.Dir, err)
	}
	best := int64(0)
	for _, e := range ents {
		if v, ok := strings.CutSuffix(e.Name(), ".root.json"); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > best {
				best = n
			}
		}
	}
	if best == 0 {
		return nil, fmt.Errorf("trust repository %s: not initialised (run bulwark trust init)", r.Dir)
	}
	return metadata.Root().FromFile(filepath.Join(r.Dir, fmt.Sprintf("%d.root.json", best)))
}

// LoadTimestamp, LoadSnapshot and LoadTargets read the current published metadata.
func (r *Repo) LoadTimestamp() (*metadata.Metadata[metadata.TimestampType], error) {
	return metadata.Timestamp().FromFile(filepath.Join(r.Dir, "timestamp.json"))
}

func (r *Repo) LoadSnapshot() (*metadata.Metadata[metadata.SnapshotType], error) {
	ts, err := r.LoadTimestamp()
	if err != nil {
		return nil, err
	}
	v := ts.Signed.Meta["snapshot.json"].Version
	return metadata.Snapshot().FromFile(filepath.Join(r.Dir, fmt.Sprintf("%d.snapshot.json", v)))
}

// LoadTargets reads role's targets metadata; a delegated role not yet signed is returned new.
func (r *Repo) LoadTargets(role string) (*metadata.Metadata[metadata.TargetsType], error) {
	snap, err := r.LoadSnapshot()
	if err != nil {
		return nil, err
	}
	mf, ok := snap.Signed.Meta[role+".json"]
	if !ok {
		if role == metadata.TARGETS {
			return nil, errors.New("snapshot lists no targets.json")
		}
		t := metadata.Targets(r.expires(metadata.TARGETS))
		t.Signed.Version = 0 // commit makes it 1
		return t, nil
	}
	return metadata.Targets().FromFile(filepath.Join(r.Dir, fmt.Sprintf("%d.%s.json", mf.Version, role)))
}

// commit publishes changed targets roles, then a new snapshot, then a new timestamp, in that
// order, so a client never sees a timestamp naming files that are not there yet. Delegated
// roles are signed with delegatedKeys; the top-level ones with the repository's keys.
func (r *Repo) commit(changed map[string]*metadata.Metadata[metadata.TargetsType], delegatedKeys []*PrivateKey, first bool) error {
	names := make([]string, 0, len(changed))
	for n := range changed {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t := changed[n]
		if !first {
			t.Signed.Version++
		}
		t.Signed.Expires = r.expires(metadata.TARGETS)
		var keys []*PrivateKey
		if n != metadata.TARGETS {
			keys = delegatedKeys
		}
		if err := r.signWrite(t, n, keys); err != nil {
			return err
		}
	}
	snap := metadata.Snapshot(r.expires(metadata.SNAPSHOT))
	if !first {
		var err error
		if snap, err = r.LoadSnapshot(); err != nil {
			return err
		}
		snap.Signed.Version++
		snap.Signed.Expires = r.expires(metadata.SNAPSHOT)
	}
	for _, n := range names {
		snap.Signed.Meta[n+".json"] = metadata.MetaFile(changed[n].Signed.Version)
	}
	if err := r.signWrite(snap, metadata.SNAPSHOT, nil); err != nil {
		return err
	}
	return r.bumpTimestamp(snap.Signed.Version, first)
}

func (r *Repo) bumpTimestamp(snapVersion int64, first bool) error {
	ts := metadata.Timestamp(r.expires(metadata.TIMESTAMP))
	if !first {
		var err error
		if ts, err = r.LoadTimestamp(); err != nil {
			return err
		}
		ts.Signed.Version++
		ts.Signed.Expires = r.expires(metadata.TIMESTAMP)
	}
	ts.Signed.Meta["snapshot.json"] = metadata.MetaFile(snapVersion)
	return r.signWrite(ts, metadata.TIMESTAMP, nil)
}

// SignOptions selects who signs: the top-level targets role (default) or a tenant's delegated
// role with the tenant's own key.
type SignOptions struct {
	Role string      // "" or "targets" for the top-level role
	Key  *PrivateKey // the tenant key for a delegated role
}

// Sign adds or updates the targets NAME:TAG and NAME@DIGEST for a manifest.
func (r *Repo) Sign(t Target, o SignOptions) error {
	if err := t.Digest.Validate(); err != nil || t.Digest.Algorithm() != digest.SHA256 {
		return fmt.Errorf("sign %s: bad manifest digest %q", t.Name, t.Digest)
	}
	unlock, err := r.lock()
	if err != nil {
		return err
	}
	defer unlock()
	role := o.Role
	if role == "" {
		role = metadata.TARGETS
	}
	var keys []*PrivateKey
	if role != metadata.TARGETS {
		top, err := r.LoadTargets(metadata.TARGETS)
		if err != nil {
			return err
		}
		dr, err := delegatedRole(top, role)
		if err != nil {
			return err
		}
		for _, p := range []string{t.Name, digestName(t.Name, t.Digest)} {
			if ok, _ := dr.IsDelegatedPath(p); !ok {
				return fmt.Errorf("%w: role %s may sign only %v, not %s", ErrNotDelegated, role, dr.Paths, p)
			}
		}
		if o.Key == nil || !contains(dr.KeyIDs, o.Key.ID) {
			return fmt.Errorf("%w: the key given is not a key of role %s", ErrThreshold, role)
		}
		keys = []*PrivateKey{o.Key}
	}
	md, err := r.LoadTargets(role)
	if err != nil {
		return err
	}
	AddTarget(md, t)
	return r.commit(map[string]*metadata.Metadata[metadata.TargetsType]{role: md}, keys, false)
}

// AddTarget records t under both its tag name and its digest name.
func AddTarget(md *metadata.Metadata[metadata.TargetsType], t Target) {
	raw, _ := hex.DecodeString(t.Digest.Encoded())
	c, _ := json.Marshal(custom{MediaType: t.MediaType})
	cm := json.RawMessage(c)
	for _, name := range []string{t.Name, digestName(t.Name, t.Digest)} {
		md.Signed.Targets[name] = &metadata.TargetFiles{Length: t.Length, Hashes: metadata.Hashes{"sha256": raw}, Custom: &cm, Path: name}
	}
}

// digestName is the target path for running NAME@DIGEST; the name part is the reference's
// repository, so a tenant's digest targets stay inside its delegated paths.
func digestName(ref string, d digest.Digest) string {
	name := ref
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		name = ref[:i]
	}
	return name + "@" + d.String()
}

func delegatedRole(top *metadata.Metadata[metadata.TargetsType], role string) (*metadata.DelegatedRole, error) {
	if top.Signed.Delegations != nil {
		for i := range top.Signed.Delegations.Roles {
			if top.Signed.Delegations.Roles[i].Name == role {
				return &top.Signed.Delegations.Roles[i], nil
			}
		}
	}
	return nil, fmt.Errorf("%w: no delegated role %q", ErrNotDelegated, role)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
