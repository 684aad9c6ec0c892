package opapolicy

import (
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/audit/audittest"
	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/policy"
	"bulwark.dev/bulwark/policy/policytest"
)

// A signed policy bundle whose revision the state root accepts for the first time, or newer
// than the accepted one, is audited as policy.bundle-accepted with its revision and digest; the
// same bundle loaded again is not a change and adds nothing.
func TestBundleAcceptedAudited(t *testing.T) {
	root, dir := t.TempDir(), t.TempDir()
	key := policytest.NewKey(t)
	id := engine.Identity{UID: 0}
	load := func(path string) {
		t.Helper()
		p, err := policy.LoadBundle(path, policy.BundleOptions{VerificationKey: key.Public, StateRoot: root})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := PrepareAudited(context.Background(), root, id, p, policy.WithRecorder(nil)); err != nil {
			t.Fatal(err)
		}
	}
	accepted := func() []audit.Record {
		t.Helper()
		if _, err := os.Stat(filepath.Join(root, "audit")); err != nil {
			return nil
		}
		var out []audit.Record
		for _, r := range audittest.Records(t, root) {
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
	if _, err := PrepareAudited(context.Background(), root, id, p); err != nil {
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

// writeTestBundle writes a signed bundle allowing everything; the revision makes each bundle's
// content distinct.
func writeTestBundle(t *testing.T, dir, name, revision string, key policytest.Key) string {
	t.Helper()
	return policytest.Write(t, filepath.Join(dir, name), policytest.Bundle{
		Policy: policytest.AllowAll, Revision: revision, Data: map[string]any{"nonce": hex.EncodeToString([]byte(revision))},
		Key: &key, KeyID: "bulwark"})
}
