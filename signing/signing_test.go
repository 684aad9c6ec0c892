package signing

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// fixture is a repository served over HTTP on 127.0.0.1 and a client pinned to its first root.
type fixture struct {
	repo   *Repo
	srv    *httptest.Server
	client *Client
}

func newFixture(t *testing.T, o InitOptions) *fixture {
	t.Helper()
	repo := NewRepo(t.TempDir())
	if err := repo.Init(o); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(repo.Dir)))
	t.Cleanup(srv.Close)
	root, err := os.ReadFile(filepath.Join(repo.Dir, "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(ClientOptions{Root: root, Remote: srv.URL, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{repo: repo, srv: srv, client: c}
}

var manifest = []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}`)

func target(name string, b []byte) Target {
	return Target{Name: name, Digest: digest.FromBytes(b), Length: int64(len(b)), MediaType: "application/vnd.oci.image.manifest.v1+json"}
}

func (f *fixture) sign(t *testing.T, name string, b []byte) {
	t.Helper()
	if err := f.repo.Sign(target(name, b), SignOptions{}); err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got error %v\nwant %v", err, want)
	}
	t.Logf("refused as expected: %v", err)
}

func TestSignVerify(t *testing.T) {
	f := newFixture(t, InitOptions{})
	f.sign(t, "demo/app:1", manifest)
	got, err := f.client.Resolve("demo/app:1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != digest.FromBytes(manifest) || got.Length != int64(len(manifest)) || got.MediaType == "" {
		t.Fatalf("target %+v", got)
	}
	if err := got.VerifyManifest(manifest); err != nil {
		t.Fatal(err)
	}
	// Running by digest requires the digest itself to be a signed target.
	if _, err := f.client.Resolve("demo/app@" + digest.FromBytes(manifest).String()); err != nil {
		t.Fatal(err)
	}
	_, err = f.client.Resolve("demo/app@" + digest.FromString("unsigned").String())
	wantErr(t, err, ErrTargetNotFound)
	_, err = f.client.Resolve("demo/other:1")
	wantErr(t, err, ErrTargetNotFound)
	wantErr(t, got.VerifyManifest([]byte(`{"schemaVersion":2}`)), ErrDigestMismatch)
	wantErr(t, got.VerifyDigest(digest.FromString("repointed")), ErrDigestMismatch)

	st, err := os.Stat(filepath.Join(f.repo.Keys, "targets"))
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("key dir mode %v %v", st.Mode(), err)
	}
	keys, _ := filepath.Glob(filepath.Join(f.repo.Keys, "*", "*.key"))
	for _, k := range keys {
		if st, _ := os.Stat(k); st.Mode().Perm() != 0o600 {
			t.Fatalf("private key %s mode %v", k, st.Mode().Perm())
		}
	}
	if len(keys) != 4 {
		t.Fatalf("%d private keys, want 4", len(keys))
	}
}

func TestRollback(t *testing.T) {
	f := newFixture(t, InitOptions{})
	f.sign(t, "demo/app:1", manifest)
	old, _ := os.ReadFile(filepath.Join(f.repo.Dir, "timestamp.json"))
	f.sign(t, "demo/app:2", manifest)
	if _, err := f.client.Resolve("demo/app:2"); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(f.repo.Dir, "timestamp.json"), old, 0o644)
	_, err := f.client.Resolve("demo/app:1")
	wantErr(t, err, ErrRollback)
}

func TestFreezeExpiredSnapshot(t *testing.T) {
	f := newFixture(t, InitOptions{})
	f.repo.Now = func() time.Time { return time.Now().Add(-8 * 24 * time.Hour) }
	f.sign(t, "demo/app:1", manifest) // snapshot expired a day ago
	f.repo.Now = time.Now
	snap, _ := f.repo.LoadSnapshot()
	if err := f.repo.bumpTimestamp(snap.Signed.Version, false); err != nil { // a fresh timestamp
		t.Fatal(err)
	}
	_, err := f.client.Resolve("demo/app:1")
	wantErr(t, err, ErrExpired)
}

func TestMixAndMatch(t *testing.T) {
	f := newFixture(t, InitOptions{})
	f.sign(t, "demo/app:1", manifest)
	f.sign(t, "demo/app:2", manifest)
	// Serve version 2 of targets under the name snapshot 3 points to.
	v2, _ := os.ReadFile(filepath.Join(f.repo.Dir, "2.targets.json"))
	os.WriteFile(filepath.Join(f.repo.Dir, "3.targets.json"), v2, 0o644)
	_, err := f.client.Resolve("demo/app:1")
	wantErr(t, err, ErrMixAndMatch)
}

func TestWrongThreshold(t *testing.T) {
	f := newFixture(t, InitOptions{Threshold: 2, Keys: 2})
	f.sign(t, "demo/app:1", manifest)
	if _, err := f.client.Resolve("demo/app:1"); err != nil {
		t.Fatal(err)
	}
	// The repository refuses to sign with fewer keys than the threshold...
	keys, _ := filepath.Glob(filepath.Join(f.repo.Keys, "targets", "*.key"))
	os.Rename(keys[0], keys[0]+".away")
	wantErr(t, f.repo.Sign(target("demo/app:2", manifest), SignOptions{}), ErrThreshold)
	// ...and a client refuses metadata someone signed with only one of the two keys.
	one, _ := loadRoleKeys(filepath.Join(f.repo.Keys, "targets"))
	md, _ := f.repo.LoadTargets(metadata.TARGETS)
	AddTarget(md, target("demo/app:2", manifest))
	md.Signed.Version++
	if err := signAndWrite(f.repo.Dir, md, metadata.TARGETS, one); err != nil {
		t.Fatal(err)
	}
	snap, _ := f.repo.LoadSnapshot()
	snap.Signed.Version++
	snap.Signed.Meta["targets.json"] = metadata.MetaFile(md.Signed.Version)
	if err := f.repo.signWrite(snap, metadata.SNAPSHOT, nil); err != nil {
		t.Fatal(err)
	}
	f.repo.bumpTimestamp(snap.Signed.Version, false)
	_, err := f.client.Resolve("demo/app:2")
	wantErr(t, err, ErrThreshold)
}

func TestTenantDelegation(t *testing.T) {
	f := newFixture(t, InitOptions{})
	a, _ := GenerateKey()
	b, _ := GenerateKey()
	if err := f.repo.Delegate("tenanta", a.Pub, []string{"tenanta/*"}); err != nil {
		t.Fatal(err)
	}
	if err := f.repo.Delegate("tenantb", b.Pub, []string{"tenantb/*"}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, f.repo.Delegate("tenantc", b.Pub, []string{"*"}), ErrNotDelegated)
	if err := f.repo.Sign(target("tenanta/app:1", manifest), SignOptions{Role: "tenanta", Key: a}); err != nil {
		t.Fatal(err)
	}
	if err := f.repo.Sign(target("tenantb/app:1", manifest), SignOptions{Role: "tenantb", Key: b}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.client.Resolve("tenanta/app:1"); err != nil {
		t.Fatal(err)
	}
	// Tenant A may not sign B's path, nor sign as B.
	wantErr(t, f.repo.Sign(target("tenantb/evil:1", manifest), SignOptions{Role: "tenanta", Key: a}), ErrNotDelegated)
	wantErr(t, f.repo.Sign(target("tenantb/evil:1", manifest), SignOptions{Role: "tenantb", Key: a}), ErrThreshold)
	// A forges B's target into its own metadata anyway: clients ignore it.
	evil := []byte(`{"evil":true}`)
	md, _ := f.repo.LoadTargets("tenanta")
	AddTarget(md, target("tenantb/app:1", evil))
	if err := f.repo.commit(map[string]*metadata.Metadata[metadata.TargetsType]{"tenanta": md}, []*PrivateKey{a}, false); err != nil {
		t.Fatal(err)
	}
	got, err := f.client.Resolve("tenantb/app:1")
	if err != nil || got.Digest != digest.FromBytes(manifest) {
		t.Fatalf("tenantb/app:1 resolved to %v, %v", got, err)
	}
	AddTarget(md, target("tenantb/new:1", evil))
	f.repo.commit(map[string]*metadata.Metadata[metadata.TargetsType]{"tenanta": md}, []*PrivateKey{a}, false)
	_, err = f.client.Resolve("tenantb/new:1")
	wantErr(t, err, ErrTargetNotFound)
}

func TestRotationAndOffline(t *testing.T) {
	f := newFixture(t, InitOptions{})
	f.sign(t, "demo/app:1", manifest)
	if _, err := f.client.Resolve("demo/app:1"); err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{metadata.TARGETS, metadata.ROOT, metadata.TIMESTAMP, metadata.SNAPSHOT} {
		if err := f.repo.Rotate(role); err != nil {
			t.Fatalf("rotate %s: %v", role, err)
		}
		if _, err := f.client.Resolve("demo/app:1"); err != nil {
			t.Fatalf("resolve after rotating %s: %v", role, err)
		}
	}
	if err := f.repo.Refresh(); err != nil {
		t.Fatal(err)
	}
	f.repo.Now = func() time.Time { return time.Now().Add(5 * 24 * time.Hour) }
	if err := f.repo.Refresh(); err != nil { // snapshot near expiry: re-signed too
		t.Fatal(err)
	}
	f.repo.Now = time.Now
	if _, err := f.client.Resolve("demo/app:1"); err != nil {
		t.Fatalf("resolve after refresh: %v", err)
	}
	st, err := f.repo.Status()
	if err != nil || st[0].Version != 5 {
		t.Fatalf("status %+v %v", st, err)
	}
	// Offline: the repository is gone, the cache still answers until it expires.
	f.srv.Close()
	_, err = f.client.Resolve("demo/app:1")
	wantErr(t, err, ErrUnreachable)
	o := f.client.o
	o.Offline = true
	off, _ := NewClient(o)
	if _, err := off.Resolve("demo/app:1"); err != nil {
		t.Fatal(err)
	}
}

func TestLocalDirectoryRemote(t *testing.T) {
	repo := NewRepo(t.TempDir())
	if err := repo.Init(InitOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := repo.Sign(target("demo/app:1", manifest), SignOptions{}); err != nil {
		t.Fatal(err)
	}
	root, _ := os.ReadFile(filepath.Join(repo.Dir, "root.json"))
	c, _ := NewClient(ClientOptions{Root: root, Remote: repo.Dir, CacheDir: t.TempDir()})
	if _, err := c.Resolve("demo/app:1"); err != nil {
		t.Fatal(err)
	}
	if _, err := (dirFetcher{dir: repo.Dir}).DownloadFile(repo.Dir+"/../keys/x", 100, 0); err == nil {
		t.Fatal("directory fetcher left the repository")
	}
}

// TestWarmClientNoticesExpiry: the in-memory fast path still fails closed once the timestamp it
// keeps reusing expires.
func TestWarmClientNoticesExpiry(t *testing.T) {
	f := newFixture(t, InitOptions{})
	f.repo.Now = func() time.Time { return time.Now().Add(-24*time.Hour + 2*time.Second) }
	f.sign(t, "demo/app:1", manifest)
	if _, err := f.client.Resolve("demo/app:1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.client.Resolve("demo/app:1"); err != nil { // fast path
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	_, err := f.client.Resolve("demo/app:1")
	wantErr(t, err, ErrExpired)
}
