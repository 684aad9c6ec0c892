package engine

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bulwark.dev/bulwark/policy/policytest"
	"bulwark.dev/bulwark/tests/internal/clitest"
)

// typeRecords returns the audit records of one type, in chain order.
func (f *fixture) typeRecords(t *testing.T, typ string) []map[string]any {
	t.Helper()
	return f.query(t, "--type", typ)
}

// trust init, sign and delegate (and a tenant's own signing) are each in the audit log with the
// role, version and key ids they produced; the chain verifies; and a run reports which role
// signed its image: the top-level "targets" role, or the tenant's delegated role.
func TestTrustChangesAuditedAndSignerRole(t *testing.T) {
	f := newFixture(t) // image import, trust init, trust sign busybox:1
	key := filepath.Join(f.dir, "acme.key")
	keyID := strings.TrimSpace(clitest.Must(t, f.root, "trust", "keygen", key))
	clitest.Must(t, f.root, "trust", "delegate", "acme", "--key", key+".pub", "--paths", "acme/*")
	clitest.Must(t, f.root, "image", "import", busyboxTar(t, f.dir, "acme"), "--tag", "acme/app:1")
	clitest.Must(t, f.root, "trust", "sign", "acme/app:1", "--role", "acme", "--key", key)
	clitest.Must(t, f.root, "audit", "verify")

	recs := f.typeRecords(t, "trust")
	want := []string{"trust.init", "trust.sign", "trust.delegate", "trust.sign"}
	if got := actions(recs); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("trust records %v, want %v", got, want)
	}
	if a := recs[0]; attr(a, "role") != "root" || attr(a, "version") != "1" || !strings.Contains(attr(a, "roles"), `"role":"targets"`) || attr(a, "root_digest") == "" {
		t.Errorf("init record: %v", a)
	}
	if s := recs[1]; attr(s, "role") != "targets" || attr(s, "target") != "busybox:1" || !strings.HasPrefix(attr(s, "digest"), "sha256:") ||
		s["image_digest"] != attr(s, "digest") || !strings.HasPrefix(attr(s, "key_ids"), `["`) {
		t.Errorf("top-level sign record: %v", s)
	}
	if d := recs[2]; attr(d, "role") != "acme" || attr(d, "key_ids") != `["`+keyID+`"]` || attr(d, "paths") != `["acme/*"]` || d["tenant"] != "acme" {
		t.Errorf("delegate record: %v (tenant key %s)", d, keyID)
	}
	if s := recs[3]; attr(s, "role") != "acme" || attr(s, "target") != "acme/app:1" || attr(s, "version") != "1" || s["tenant"] != "acme" {
		t.Errorf("tenant sign record: %v", s)
	}
	// Public key ids only: the tenant's private key never reaches the log.
	var kf struct{ Private string }
	b, err := os.ReadFile(key)
	if err != nil || json.Unmarshal(b, &kf) != nil || len(kf.Private) < 64 {
		t.Fatalf("tenant key file: %v", err)
	}
	if out := clitest.Must(t, f.root, "audit", "query"); strings.Contains(out, kf.Private[:16]) {
		t.Error("the tenant's private key is in the audit log")
	}

	for _, c := range []struct{ image, role string }{{"busybox:1", "targets"}, {"acme/app:1", "acme"}} {
		id := f.name(t, "signer")
		r := clitest.Run(t, f.root, "run", "--rm", "--name", id, c.image, "true")
		if r.Code != 0 {
			t.Fatalf("run %s: exit %d: %s", c.image, r.Code, r.Stderr)
		}
		if got := attr(find(f.records(t, id), "trust", "resolve"), "role"); got != c.role {
			t.Errorf("%s: trust.resolve role %q, want %q", c.image, got, c.role)
		}
	}
	f.assertNothingLeft(t)
	if out := clitest.Must(t, f.root, "audit", "verify"); !strings.Contains(out, "OK") {
		t.Errorf("audit verify: %s", out)
	}
}

// A run that activates a new signed policy bundle revision records policy.bundle-accepted in its
// story; the same bundle again is no change; `policy eval` with a newer bundle records it too.
func TestBundleAcceptanceAudited(t *testing.T) {
	f := newFixture(t)
	key := policytest.NewKey(t)
	pubFile := filepath.Join(f.dir, "bundle.pub")
	if err := os.WriteFile(pubFile, key.Public, 0o644); err != nil {
		t.Fatal(err)
	}
	b1 := signedBundle(t, f.dir, "1", key)
	for i := 0; i < 2; i++ {
		id := f.name(t, "bundle")
		r := clitest.Run(t, f.root, "run", "--rm", "--name", id, "--policy-bundle", b1, "--policy-key", pubFile, "busybox:1", "true")
		if r.Code != 0 {
			t.Fatalf("run with bundle: exit %d: %s", r.Code, r.Stderr)
		}
		got := actions(f.records(t, id))
		accepted := inOrder(got, []string{"policy.bundle-accepted", "policy.decision"})
		if accepted != (i == 0) {
			t.Errorf("run %d: audit story %v (bundle-accepted expected only the first time)", i, got)
		}
	}
	input := filepath.Join(f.dir, "request.json")
	if err := os.WriteFile(input, []byte(`{"apiVersion":"bulwark.dev/run/v1","tenant":"default","operation":"run"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	b2 := signedBundle(t, f.dir, "2", key)
	// A document that is no full request is denied (exit 1); the bundle was prepared first.
	if r := clitest.Run(t, f.root, "policy", "eval", "--bundle", b2, "--verification-key", pubFile, "--input", input); r.Code == 125 {
		t.Fatalf("policy eval with bundle 2: %s", r.Stderr)
	}
	recs := f.typeRecords(t, "policy")
	var acc []map[string]any
	for _, r := range recs {
		if r["action"] == "bundle-accepted" {
			acc = append(acc, r)
		}
	}
	if len(acc) != 2 || attr(acc[0], "revision") != "1" || attr(acc[1], "revision") != "2" || attr(acc[1], "previous_revision") != "1" ||
		attr(acc[1], "location") != b2 || !strings.HasPrefix(attr(acc[1], "digest"), "sha256:") {
		t.Errorf("bundle-accepted records: %v", acc)
	}
	f.assertNothingLeft(t)
	clitest.Must(t, f.root, "audit", "verify")
}

// signedBundle writes a signed bundle whose policy allows every request; the floor still
// applies to what runs.
func signedBundle(t *testing.T, dir, revision string, key policytest.Key) string {
	t.Helper()
	return policytest.Write(t, filepath.Join(dir, "bundle-"+revision+".tar.gz"), policytest.Bundle{
		Policy: policytest.AllowAll, Revision: revision, Data: map[string]any{"revision": revision}, Key: &key, KeyID: "bulwark"})
}

// TestTrustVerifyChecksBlobs: `trust verify` checks the local image as a run does — a corrupt
// layer blob fails it (it used to compare only the tag and the manifest, and exit 0) — and is
// audited.
func TestTrustVerifyChecksBlobs(t *testing.T) {
	f := newFixture(t)
	out := clitest.Must(t, f.root, "trust", "verify", "busybox:1")
	if !strings.HasPrefix(out, "busybox:1 sha256:") {
		t.Errorf("trust verify: %q", out)
	}
	tamperLayer(t, f.root, "busybox:1")
	r := clitest.Run(t, f.root, "trust", "verify", "busybox:1")
	if r.Code == 0 || !strings.Contains(r.Stderr, "image verification failed") {
		t.Errorf("trust verify of a corrupt layer: exit %d\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
	}
	failed := false
	for _, rec := range f.typeRecords(t, "trust") {
		if rec["action"] == "verify.failed" && attr(rec, "step") == "blobs" {
			failed = true
		}
	}
	if !failed {
		t.Error("no trust verify.failed record for the blobs step")
	}
}
