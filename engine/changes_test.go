package engine

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
	"bulwark.dev/bulwark/policy/policytest"
	"bulwark.dev/bulwark/signing"
)

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
	e, err := Open(Config{Root: root, PolicyDir: polDir, Policies: inProcess(t), Trust: signing.Resolver{}})
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
	audittest.Records(t, root)
}

// A run that activates a new bundle revision carries its acceptance in its own audit story,
// before the decision made with it.
func TestRunRecordsBundleAcceptance(t *testing.T) {
	root := signedRoot(t)
	key := policytest.NewKey(t)
	path := writeTestBundle(t, t.TempDir(), "run.tar.gz", "7", key)
	e, err := Open(Config{Root: root, PolicyBundle: path, PolicyKeyFile: keyFile(t, key), Policies: inProcess(t), Trust: signing.Resolver{}})
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
	audittest.Records(t, root)
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
