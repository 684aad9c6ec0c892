// Package policytest writes signing keys and OPA bundles, as `opa build --signing-key` would, for
// the tests of policy and of what loads policy bundles (engine, the bulwark command line).
package policytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
)

// AllowAll is a bundle policy that allows every request (the floor still applies to what runs).
const AllowAll = `package bulwark.run

decision := {"allow": true, "reasons": [], "constraints": {}}
`

// Key is an ECDSA P-256 key pair in PEM: PKCS #8 private, PKIX public.
type Key struct{ Private, Public []byte }

// NewKey generates a fresh key.
func NewKey(t testing.TB) Key {
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
	return Key{
		Private: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}),
		Public:  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}),
	}
}

// Bundle is what Write puts in a snapshot bundle.
type Bundle struct {
	Policy   string // Rego v1 source, the bundle's one module /policy.rego
	Revision string
	Data     map[string]any
	// Key signs the bundle, with KeyID as the token's "kid" header. Without a Key the bundle
	// carries Signatures as given (none: unsigned).
	Key        *Key
	KeyID      string
	Signatures bundle.SignaturesConfig
}

// Write writes b to path as a gzipped bundle tar and returns path.
func Write(t testing.TB, path string, b Bundle) string {
	t.Helper()
	mod, err := ast.ParseModuleWithOpts("/policy.rego", b.Policy, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		t.Fatal(err)
	}
	ob := bundle.Bundle{
		Manifest:   bundle.Manifest{Revision: b.Revision},
		Data:       b.Data,
		Modules:    []bundle.ModuleFile{{URL: "/policy.rego", Path: "/policy.rego", Raw: []byte(b.Policy), Parsed: mod}},
		Signatures: b.Signatures,
	}
	ob.Manifest.Init()
	if b.Key != nil {
		if err := ob.GenerateSignature(bundle.NewSigningConfig(string(b.Key.Private), "ES256", ""), b.KeyID, false); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := bundle.NewWriter(f).Write(ob); err != nil {
		t.Fatal(err)
	}
	return path
}
