package sandbox

import (
	"path/filepath"
	"testing"

	"bulwark.dev/bulwark/profiles"
	"bulwark.dev/bulwark/sandbox/internal/seccomp"
	"bulwark.dev/bulwark/sandbox/internal/seccomp/compiler"
)

// TestDefaultCompileDigests: the digests kept for the default allowlist are those of the
// embedded profile resolved for each architecture, and are never used for another profile.
func TestDefaultCompileDigests(t *testing.T) {
	for _, arch := range []string{"amd64", "arm64"} {
		p, err := profiles.ParseDockerSeccompWith(profiles.DefaultSeccompJSON(), profiles.ParseOptions{GOARCH: arch})
		if err != nil {
			t.Fatal(err)
		}
		want, err := profiles.SeccompDigest(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := defaultCompileDigests[arch]; got != want {
			t.Errorf("defaultCompileDigests[%q] = %q, want %q (the embedded profile changed: update them)", arch, got, want)
		}
	}
	if d, ok := defaultCompileDigest(profiles.DefaultSeccompSum()); ok {
		if want, _ := profiles.SeccompDigest(profiles.DefaultSeccomp()); d != want {
			t.Errorf("this machine's default digest %s, want %s", d, want)
		}
	}
	if _, ok := defaultCompileDigest("another profile's sum"); ok {
		t.Error("a digest kept for the embedded profile was given for another")
	}
}

// TestCompileDefault: the default allowlist comes out the same compiled on a miss (stored) and
// found by its kept digest on a hit, as CachedCompile gives it.
func TestCompileDefault(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "seccomp-cache")
	miss, err := compileDefault(cache)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := defaultCompileDigest(profiles.DefaultSeccompSum()); ok {
		if _, ok := seccomp.Cached(cache, d); !ok {
			t.Error("the miss stored no entry under the kept digest")
		}
	}
	hit, err := compileDefault(cache)
	if err != nil {
		t.Fatal(err)
	}
	want, err := seccomp.CachedCompile(cache, profiles.DefaultSeccomp(), compiler.Compile)
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]*seccomp.Program{"miss": miss, "hit": hit} {
		if p.Sum() != want.Sum() || p.Digest != want.Digest || p.Flags != want.Flags {
			t.Errorf("%s: program %s (%s), want %s (%s)", name, p.Sum(), p.Digest, want.Sum(), want.Digest)
		}
	}
}
