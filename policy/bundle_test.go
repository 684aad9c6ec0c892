package policy

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/bundle"

	"bulwark.dev/bulwark/policy/document"
	"bulwark.dev/bulwark/policy/policytest"
)

const bundlePolicy = `package bulwark.run

decision := {"allow": input.tenant == data.bulwark.allowed, "reasons": [], "constraints": {}}
`

// writeBundle writes a bundle of bundlePolicy; key nil leaves it unsigned. Its "kid" header
// names no configured key: verification must use the pinned key id, not the token's.
func writeBundle(t *testing.T, dir, name, revision string, data map[string]any, key *policytest.Key) string {
	t.Helper()
	return policytest.Write(t, filepath.Join(dir, name), policytest.Bundle{
		Policy: bundlePolicy, Revision: revision, Data: data, Key: key, KeyID: "any-kid"})
}

func loadAndPrepare(path string, opts BundleOptions) (*Engine, error) {
	p, err := LoadBundle(path, opts)
	if err != nil {
		return nil, err
	}
	return NewEngine(context.Background(), p, WithRecorder(nil))
}

func TestSignedBundle(t *testing.T) {
	key, other := policytest.NewKey(t), policytest.NewKey(t)
	dir, root := t.TempDir(), t.TempDir()
	opts := BundleOptions{VerificationKey: key.Public, StateRoot: root}
	data := map[string]any{"bulwark": map[string]any{"allowed": "acme"}}

	good := writeBundle(t, dir, "r5.tar.gz", "5", data, &key)
	e, err := loadAndPrepare(good, opts)
	if err != nil {
		t.Fatal(err)
	}
	if info := e.Info(); info.Source != SourceBundle || info.Revision != "5" {
		t.Fatalf("info %+v", info)
	}
	if d := e.Decide(context.Background(), allowedRequest(t)); !d.Allow || d.Revision != "5" {
		t.Fatalf("decision %+v", d)
	}
	if rev, ok, err := ReadAcceptedRevision(root); err != nil || !ok || rev.Revision != 5 {
		t.Fatalf("accepted revision %+v %v %v", rev, ok, err)
	}
	// The same bundle again is fine (restarts reload it).
	if _, err := loadAndPrepare(good, opts); err != nil {
		t.Fatalf("reloading the accepted bundle: %v", err)
	}

	for name, tc := range map[string]struct {
		path string
		opts BundleOptions
		want error
		msg  string
	}{
		"older revision":               {writeBundle(t, dir, "r4.tar.gz", "4", data, &key), opts, ErrRollback, "older than accepted revision 5"},
		"same revision, other content": {writeBundle(t, dir, "r5b.tar.gz", "5", map[string]any{"bulwark": map[string]any{"allowed": "mallory"}}, &key), opts, ErrRollback, "different content"},
		"signed by another key":        {writeBundle(t, dir, "bad.tar.gz", "9", data, &other), opts, ErrSignature, "verify"},
		"unsigned":                     {writeBundle(t, dir, "unsigned.tar.gz", "9", data, nil), opts, ErrSignature, "missing .signatures.json"},
		"non-numeric revision":         {writeBundle(t, dir, "git.tar.gz", "abc123", data, &key), opts, nil, "not an unsigned integer"},
		"no key":                       {good, BundleOptions{StateRoot: root}, nil, "verification key"},
		"hmac secret as key":           {good, BundleOptions{VerificationKey: []byte("secret"), StateRoot: root}, nil, "PUBLIC KEY"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := loadAndPrepare(tc.path, tc.opts)
			if err == nil {
				t.Fatal("bundle accepted")
			}
			if tc.want != nil && !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %q, want %v containing %q", err, tc.want, tc.msg)
			}
		})
	}
	if rev, _, _ := ReadAcceptedRevision(root); rev.Revision != 5 {
		t.Fatalf("refused bundles moved the accepted revision to %d", rev.Revision)
	}

	// Newer is accepted and raises the floor.
	if _, err := loadAndPrepare(writeBundle(t, dir, "r6.tar.gz", "6", data, &key), opts); err != nil {
		t.Fatal(err)
	}
	if _, err := loadAndPrepare(good, opts); !errors.Is(err, ErrRollback) {
		t.Fatalf("replaying revision 5 after 6: %v", err)
	}
}

func TestTamperedBundleRefused(t *testing.T) {
	key := policytest.NewKey(t)
	dir := t.TempDir()
	signed := writeBundle(t, dir, "a.tar.gz", "1", map[string]any{"bulwark": map[string]any{"allowed": "acme"}}, &key)
	// Take the signature from one bundle and put it on another with different data.
	sig := readBundleSignatures(t, signed)
	path := policytest.Write(t, filepath.Join(dir, "tampered.tar.gz"), policytest.Bundle{
		Policy: bundlePolicy, Revision: "1", Data: map[string]any{"bulwark": map[string]any{"allowed": "mallory"}}, Signatures: sig})
	_, err := LoadBundle(path, BundleOptions{VerificationKey: key.Public, StateRoot: t.TempDir()})
	if !errors.Is(err, ErrSignature) || !strings.Contains(err.Error(), "digest mismatch") {
		t.Fatalf("tampered bundle: %v", err)
	}
}

func readBundleSignatures(t *testing.T, path string) bundle.SignaturesConfig {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no .signatures.json in %s: %v", path, err)
		}
		if strings.TrimPrefix(h.Name, "/") != ".signatures.json" {
			continue
		}
		var sc bundle.SignaturesConfig
		if err := json.NewDecoder(tr).Decode(&sc); err != nil {
			t.Fatal(err)
		}
		return sc
	}
}

func TestCorruptRevisionRecordFailsClosed(t *testing.T) {
	key := policytest.NewKey(t)
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "policy"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "policy", document.RevisionFile), []byte("{garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := writeBundle(t, t.TempDir(), "b.tar.gz", "1", map[string]any{}, &key)
	if _, err := LoadBundle(path, BundleOptions{VerificationKey: key.Public, StateRoot: root}); err == nil {
		t.Fatal("bundle accepted with a corrupt revision record")
	}
}
