package truststate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/audit/audittest"
	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/signing"
	"github.com/opencontainers/go-digest"
)

// Every trust change appends one trust event with the role, its new version and its key ids,
// and never private key material; the chain verifies.
func TestTrustChangesAudited(t *testing.T) {
	root := t.TempDir()
	trustDir := filepath.Join(root, "trust")
	repo := signing.NewRepo(trustDir)
	id := engine.Identity{UID: 1234, GID: 1234}
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

	recs := audittest.Records(t, root)
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
