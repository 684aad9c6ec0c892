package signing

import (
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

// Resolve reports the role whose metadata the target came from: the top-level role for images
// it signed, the tenant's role for images the tenant signed, and the rightful tenant's role
// when another tenant forged the same path into its own metadata.
func TestResolveReportsSignerRole(t *testing.T) {
	f := newFixture(t, InitOptions{})
	a, _ := GenerateKey()
	b, _ := GenerateKey()
	for tenant, k := range map[string]*PrivateKey{"tenanta": a, "tenantb": b} {
		if err := f.repo.Delegate(tenant, k.Pub, []string{tenant + "/*"}); err != nil {
			t.Fatal(err)
		}
	}
	f.sign(t, "demo/app:1", manifest)
	if err := f.repo.Sign(target("tenanta/app:1", manifest), SignOptions{Role: "tenanta", Key: a}); err != nil {
		t.Fatal(err)
	}
	if err := f.repo.Sign(target("tenantb/app:1", manifest), SignOptions{Role: "tenantb", Key: b}); err != nil {
		t.Fatal(err)
	}
	forged := []byte(`{"forged":true}`)
	md, _ := f.repo.LoadTargets("tenanta")
	AddTarget(md, target("tenantb/app:1", forged))
	if err := f.repo.commit(map[string]*metadata.Metadata[metadata.TargetsType]{"tenanta": md}, []*PrivateKey{a}, false); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ ref, role string }{
		{"demo/app:1", metadata.TARGETS},
		{"demo/app@" + digest.FromBytes(manifest).String(), metadata.TARGETS},
		{"tenanta/app:1", "tenanta"},
		{"tenanta/app@" + digest.FromBytes(manifest).String(), "tenanta"},
		{"tenantb/app:1", "tenantb"},
	} {
		got, err := f.client.Resolve(c.ref)
		if err != nil {
			t.Fatalf("%s: %v", c.ref, err)
		}
		if got.Role != c.role || got.Digest != digest.FromBytes(manifest) {
			t.Errorf("%s: role %q digest %s, want role %q digest %s", c.ref, got.Role, got.Digest, c.role, digest.FromBytes(manifest))
		}
	}
	// The same answers from a warm client that reuses verified metadata (the fast path).
	got, err := f.client.Resolve("tenanta/app:1")
	if err != nil || got.Role != "tenanta" {
		t.Fatalf("warm resolve: %+v, %v", got, err)
	}
}

// A walk that cannot reach the role go-tuf found the target in is refused, not guessed.
func TestSignerRoleRefusesWhatItCannotTell(t *testing.T) {
	tf := &metadata.TargetFiles{Length: 1, Hashes: metadata.Hashes{"sha256": make([]byte, 32)}}
	if _, err := signerRole(trustedmetadata.TrustedMetadata{}, "demo/app:1", tf); err == nil {
		t.Fatal("no targets metadata loaded, yet a signer role was reported")
	}
	top := metadata.Targets(time.Now().Add(time.Hour))
	other := *tf
	other.Length = 2
	top.Signed.Targets["demo/app:1"] = &other
	tm := trustedmetadata.TrustedMetadata{Targets: map[string]*metadata.Metadata[metadata.TargetsType]{metadata.TARGETS: top}}
	if _, err := signerRole(tm, "demo/app:1", tf); err == nil {
		t.Fatal("a different target was attributed to the top-level role")
	}
}

// TestTenantSyntax: a delegated tenant's name is [a-z0-9][a-z0-9-]{0,62}, its length checked apart
// from the alphabet.
func TestTenantSyntax(t *testing.T) {
	for name, want := range map[string]bool{
		"a": true, "a-1": true, strings.Repeat("a", 63): true,
		"": false, strings.Repeat("a", 64): false, "-a": false, "A": false, "a_b": false,
	} {
		if got := validTenant(name); got != want {
			t.Errorf("validTenant(%q) = %v, want %v", name, got, want)
		}
	}
}
