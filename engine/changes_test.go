package engine

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/policy"
	"bulwark.dev/bulwark/policy/policytest"
	"bulwark.dev/bulwark/signing"
)

// auditRecords returns every record of the state root's audit log after checking the whole chain.
func auditRecords(t *testing.T, root string) []audit.Record {
	t.Helper()
	if _, err := audit.Verify(filepath.Join(root, "audit"), nil); err != nil {
		t.Fatalf("audit verify: %v", err)
	}
	recs, err := audit.Query(filepath.Join(root, "audit"), audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func findRecord(recs []audit.Record, typ, action string) *audit.Record {
	for i := range recs {
		if recs[i].Type == typ && recs[i].Action == action {
			return &recs[i]
		}
	}
	return nil
}

// echoSignerPolicy denies every request with the image's signer role as the reason, so a test
// can read what the policy was shown.
const echoSignerPolicy = `package bulwark.run

decision := {"allow": false, "reasons": [{"code": "SIGNER", "message": object.get(input.image, "signerRole", "(none)"), "path": "image.signerRole"}], "constraints": {}}
`

// An image signed by the top-level targets role is reported as signed by "targets", one a
// tenant signed under its delegation as signed by that tenant's role: in the trust.resolve
// audit event and in the request policy decides.
func TestSignerRoleReported(t *testing.T) {
	root := signedRoot(t) // busybox:1, signed by the top-level targets role
	polDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(polDir, "echo.rego"), []byte(echoSignerPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := Open(Config{Root: root, PolicyDir: polDir})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	desc, err := e.Store().Resolve("busybox:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Store().Tag("acme/app:1", desc); err != nil {
		t.Fatal(err)
	}
	key, err := signing.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	repo := signing.NewRepo(filepath.Join(root, "trust"))
	if err := repo.Delegate("acme", key.Pub, []string{"acme/*"}); err != nil {
		t.Fatal(err)
	}
	tgt := signing.Target{Name: "acme/app:1", Digest: desc.Digest, Length: desc.Size, MediaType: desc.MediaType}
	if err := repo.Sign(tgt, signing.SignOptions{Role: "acme", Key: key}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ image, role string }{{"busybox:1", "targets"}, {"acme/app:1", "acme"}} {
		name := strings.NewReplacer("/", "-", ":", "-").Replace(c.image)
		plan, err := e.Prepare(context.Background(), &Request{Image: c.image, Args: []string{"true"}, Name: name, Tenant: "acme", DryRun: true})
		var denied *DeniedError
		if !errors.As(err, &denied) {
			t.Fatalf("%s: want the echo policy's denial, got %v", c.image, err)
		}
		if r := plan.Decision.Reasons; len(r) != 1 || r[0].Code != "SIGNER" || r[0].Message != c.role {
			t.Errorf("%s: policy was shown signer role %+v, want %q", c.image, r, c.role)
		}
		recs, err := audit.Query(filepath.Join(root, "audit"), audit.Filter{ContainerID: name})
		if err != nil {
			t.Fatal(err)
		}
		if r := findRecord(recs, audit.TypeTrust, "resolve"); r == nil || r.Attrs["role"] != c.role {
			t.Errorf("%s: trust.resolve record %+v, want role %q", c.image, r, c.role)
		}
	}
	auditRecords(t, root)
}

// Every trust change appends one trust event with the role, its new version and its key ids,
// and never private key material; the chain verifies.
func TestTrustChangesAudited(t *testing.T) {
	root := t.TempDir()
	trustDir := filepath.Join(root, "trust")
	repo := signing.NewRepo(trustDir)
	id := Identity{UID: 1234, GID: 1234}
	record := func(c TrustChange) {
		t.Helper()
		if err := RecordTrustChange(root, id, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := repo.Init(signing.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	pinned, err := os.ReadFile(filepath.Join(repo.Dir, "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := signing.Pin(trustDir, repo.Dir, pinned); err != nil {
		t.Fatal(err)
	}
	record(TrustChange{Action: "init"})
	key, err := signing.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.Delegate("acme", key.Pub, []string{"acme/*"}); err != nil {
		t.Fatal(err)
	}
	record(TrustChange{Action: "delegate", Role: "acme"})
	tgt := signing.Target{Name: "acme/app:1", Digest: digest.Digest("sha256:" + strings.Repeat("ab", 32)), Length: 7, MediaType: "application/vnd.oci.image.manifest.v1+json"}
	if err := repo.Sign(tgt, signing.SignOptions{Role: "acme", Key: key}); err != nil {
		t.Fatal(err)
	}
	record(TrustChange{Action: "sign", Role: "acme", Target: &tgt})
	top := signing.Target{Name: "demo:1", Digest: digest.Digest("sha256:" + strings.Repeat("cd", 32)), Length: 9}
	if err := repo.Sign(top, signing.SignOptions{}); err != nil {
		t.Fatal(err)
	}
	record(TrustChange{Action: "sign", Target: &top})
	if err := repo.Rotate("targets"); err != nil {
		t.Fatal(err)
	}
	record(TrustChange{Action: "rotate", Role: "targets"})
	if err := repo.Refresh(); err != nil {
		t.Fatal(err)
	}
	record(TrustChange{Action: "refresh"})
	root2, err := os.ReadFile(filepath.Join(repo.Dir, "root.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := signing.Pin(trustDir, repo.Dir, root2); err != nil {
		t.Fatal(err)
	}
	record(TrustChange{Action: "pin"})
	if err := RecordTrustChange(root, id, TrustChange{Action: "bogus"}); err == nil {
		t.Error("an unknown trust change was recorded")
	}

	recs := auditRecords(t, root)
	var got []string
	for _, r := range recs {
		got = append(got, r.Type+"."+r.Action)
		if r.Actor.UID == nil || *r.Actor.UID != 1234 {
			t.Errorf("%s.%s: actor %+v", r.Type, r.Action, r.Actor)
		}
	}
	want := []string{"trust.init", "trust.delegate", "trust.sign", "trust.sign", "trust.rotate", "trust.refresh", "trust.pin"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("audit story %v, want %v", got, want)
	}
	keyIDs := func(r audit.Record) []string {
		var ids []string
		if err := json.Unmarshal([]byte(r.Attrs["key_ids"]), &ids); err != nil {
			t.Fatalf("%s key_ids %q: %v", r.Action, r.Attrs["key_ids"], err)
		}
		return ids
	}
	check := func(i int, attrs map[string]string) {
		t.Helper()
		for k, v := range attrs {
			if recs[i].Attrs[k] != v {
				t.Errorf("%s: %s = %q, want %q (attrs %v)", want[i], k, recs[i].Attrs[k], v, recs[i].Attrs)
			}
		}
	}
	check(0, map[string]string{"role": "root", "version": "1", "remote": repo.Dir, "timestamp_version": "1"})
	if !strings.Contains(recs[0].Attrs["roles"], `"role":"timestamp"`) {
		t.Errorf("init: roles %s", recs[0].Attrs["roles"])
	}
	check(1, map[string]string{"role": "acme", "version": "0", "paths": `["acme/*"]`, "targets_version": "2"})
	if ids := keyIDs(recs[1]); len(ids) != 1 || ids[0] != key.ID || recs[1].Tenant != "acme" {
		t.Errorf("delegate: key ids %v tenant %q, want [%s] acme", ids, recs[1].Tenant, key.ID)
	}
	check(2, map[string]string{"role": "acme", "version": "1", "target": "acme/app:1", "digest": string(tgt.Digest), "length": "7"})
	if recs[2].ImageDigest != string(tgt.Digest) || recs[2].Tenant != "acme" {
		t.Errorf("tenant sign: image digest %q tenant %q", recs[2].ImageDigest, recs[2].Tenant)
	}
	check(3, map[string]string{"role": "targets", "version": "3", "target": "demo:1"})
	check(4, map[string]string{"role": "targets", "version": "4", "root_version": "2"})
	if old, rotated := keyIDs(recs[3]), keyIDs(recs[4]); len(rotated) != 1 || rotated[0] == old[0] {
		t.Errorf("rotate: key ids %v, before %v", rotated, old)
	}
	check(5, map[string]string{"role": "timestamp"})
	check(6, map[string]string{"role": "root", "version": "2", "remote": repo.Dir})
	if !strings.HasPrefix(recs[6].Attrs["root_digest"], "sha256:") {
		t.Errorf("pin: root digest %q", recs[6].Attrs["root_digest"])
	}

	// No private key of any role, nor the tenant's, appears anywhere in the log.
	log, err := os.ReadFile(filepath.Join(root, "audit", "audit-000000.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	keyFiles, _ := filepath.Glob(filepath.Join(repo.Keys, "*", "*.key"))
	retired, _ := filepath.Glob(filepath.Join(repo.Keys, "*", "retired", "*.key"))
	if len(keyFiles) != 4 || len(retired) != 1 {
		t.Fatalf("key files %v, retired %v", keyFiles, retired)
	}
	for _, p := range append(keyFiles, retired...) {
		var kf struct{ Private string }
		b, err := os.ReadFile(p)
		if err != nil || json.Unmarshal(b, &kf) != nil || len(kf.Private) < 64 {
			t.Fatalf("key file %s: %v", p, err)
		}
		// The seed half of an ed25519 private key: any 16 hex digits of it would be a leak.
		if strings.Contains(string(log), kf.Private[:16]) {
			t.Errorf("private key material of %s is in the audit log", p)
		}
	}
}

// A signed policy bundle whose revision the state root accepts for the first time, or newer
// than the accepted one, is audited as policy.bundle-accepted with its revision and digest; the
// same bundle loaded again is not a change and adds nothing.
func TestBundleAcceptedAudited(t *testing.T) {
	root, dir := t.TempDir(), t.TempDir()
	key := policytest.NewKey(t)
	id := Identity{UID: 0}
	load := func(path string) {
		t.Helper()
		p, err := policy.LoadBundle(path, policy.BundleOptions{VerificationKey: key.Public, StateRoot: root})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := PreparePolicy(context.Background(), root, id, p, policy.WithRecorder(nil)); err != nil {
			t.Fatal(err)
		}
	}
	accepted := func() []audit.Record {
		t.Helper()
		if _, err := os.Stat(filepath.Join(root, "audit")); err != nil {
			return nil
		}
		var out []audit.Record
		for _, r := range auditRecords(t, root) {
			if r.Type == audit.TypePolicy && r.Action == "bundle-accepted" {
				out = append(out, r)
			}
		}
		return out
	}
	// The embedded policy is no bundle: nothing to record, and no audit log is created.
	p, err := policy.LoadEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := PreparePolicy(context.Background(), root, id, p); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "audit")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("preparing the embedded policy touched the audit log: %v", err)
	}

	b1 := writeTestBundle(t, dir, "r1.tar.gz", "1", key)
	load(b1)
	load(b1)
	b2 := writeTestBundle(t, dir, "r2.tar.gz", "2", key)
	load(b2)
	got := accepted()
	if len(got) != 2 {
		t.Fatalf("%d bundle-accepted records, want 2: %+v", len(got), got)
	}
	rev, _, err := policy.ReadAcceptedRevision(root)
	if err != nil {
		t.Fatal(err)
	}
	if a := got[0].Attrs; a["revision"] != "1" || a["location"] != b1 || a["previous_revision"] != "" || !strings.HasPrefix(a["digest"], "sha256:") {
		t.Errorf("first acceptance %v", a)
	}
	if a := got[1].Attrs; a["revision"] != "2" || a["digest"] != rev.Digest || a["previous_revision"] != "1" || a["previous_digest"] != got[0].Attrs["digest"] {
		t.Errorf("second acceptance %v (accepted %+v)", a, rev)
	}
}

// A run that activates a new bundle revision carries its acceptance in its own audit story,
// before the decision made with it.
func TestRunRecordsBundleAcceptance(t *testing.T) {
	root := signedRoot(t)
	key := policytest.NewKey(t)
	path := writeTestBundle(t, t.TempDir(), "run.tar.gz", "7", key)
	e, err := Open(Config{Root: root, PolicyBundle: path, PolicyKey: key.Public})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	_, err = e.Prepare(context.Background(), &Request{Image: "busybox:1", Args: []string{"true"}, Name: "bundled", DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := audit.Query(filepath.Join(root, "audit"), audit.Filter{ContainerID: "bundled"})
	if err != nil {
		t.Fatal(err)
	}
	var story []string
	for _, r := range recs {
		story = append(story, r.Type+"."+r.Action)
	}
	if !inOrder(story, "policy.bundle-accepted", "policy.decision") {
		t.Fatalf("audit story %v lacks policy.bundle-accepted before policy.decision", story)
	}
	if r := findRecord(recs, audit.TypePolicy, "bundle-accepted"); r.Attrs["revision"] != "7" || r.RequestID == "" {
		t.Errorf("bundle-accepted %+v", r)
	}
	auditRecords(t, root)
}

func inOrder(got []string, want ...string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

// writeTestBundle writes a signed bundle allowing everything; the revision makes each bundle's
// content distinct.
func writeTestBundle(t *testing.T, dir, name, revision string, key policytest.Key) string {
	t.Helper()
	return policytest.Write(t, filepath.Join(dir, name), policytest.Bundle{
		Policy: policytest.AllowAll, Revision: revision, Data: map[string]any{"nonce": hex.EncodeToString([]byte(revision))},
		Key: &key, KeyID: "bulwark"})
}
