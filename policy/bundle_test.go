package policy

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
)

type testKey struct{ priv, pub []byte }

func newTestKey(t *testing.T) testKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{
		priv: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}),
		pub:  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}),
	}
}

const bundlePolicy = `package bulwark.run

decision := {"allow": input.tenant == data.bulwark.allowed, "reasons": [], "constraints": {}}
`

// writeBundle builds a bundle like `opa build --signing-key` would; key nil leaves it unsigned.
func writeBundle(t *testing.T, dir, name, revision string, data map[string]any, key *testKey) string {
	t.Helper()
	mod, err := ast.ParseModuleWithOpts("/policy.rego", bundlePolicy, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		t.Fatal(err)
	}
	b := bundle.Bundle{
		Manifest: bundle.Manifest{Revision: revision},
		Data:     data,
		Modules:  []bundle.ModuleFile{{URL: "/policy.rego", Path: "/policy.rego", Raw: []byte(bundlePolicy), Parsed: mod}},
	}
	b.Manifest.Init()
	if key != nil {
		if err := b.GenerateSignature(bundle.NewSigningConfig(string(key.priv), "ES256", ""), "any-kid", false); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := bundle.NewWriter(f).Write(b); err != nil {
		t.Fatal(err)
	}
	return path
}

func loadAndPrepare(path string, opts BundleOptions) (*Engine, error) {
	p, err := LoadBundle(path, opts)
	if err != nil {
		return nil, err
	}
	return NewEngine(context.Background(), p, WithRecorder(nil))
}

func TestSignedBundle(t *testing.T) {
	key, other := newTestKey(t), newTestKey(t)
	dir, root := t.TempDir(), t.TempDir()
	opts := BundleOptions{VerificationKey: key.pub, StateRoot: root}
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
	key := newTestKey(t)
	dir := t.TempDir()
	signed := writeBundle(t, dir, "a.tar.gz", "1", map[string]any{"bulwark": map[string]any{"allowed": "acme"}}, &key)
	// Take the signature from one bundle and put it on another with different data.
	sig := readBundleSignatures(t, signed)
	mod, _ := ast.ParseModuleWithOpts("/policy.rego", bundlePolicy, ast.ParserOptions{RegoVersion: ast.RegoV1})
	b := bundle.Bundle{
		Manifest:   bundle.Manifest{Revision: "1"},
		Data:       map[string]any{"bulwark": map[string]any{"allowed": "mallory"}},
		Modules:    []bundle.ModuleFile{{URL: "/policy.rego", Path: "/policy.rego", Raw: []byte(bundlePolicy), Parsed: mod}},
		Signatures: sig,
	}
	b.Manifest.Init()
	path := filepath.Join(dir, "tampered.tar.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := bundle.NewWriter(f).Write(b); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = LoadBundle(path, BundleOptions{VerificationKey: key.pub, StateRoot: t.TempDir()})
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
	key := newTestKey(t)
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "policy"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "policy", revisionFile), []byte("{garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := writeBundle(t, t.TempDir(), "b.tar.gz", "1", map[string]any{}, &key)
	if _, err := LoadBundle(path, BundleOptions{VerificationKey: key.pub, StateRoot: root}); err == nil {
		t.Fatal("bundle accepted with a corrupt revision record")
	}
}
