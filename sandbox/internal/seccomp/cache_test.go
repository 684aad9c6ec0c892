package seccomp

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/profiles"
)

// fakeCompile stands for the compiler (package compiler, which links libseccomp and is tested
// there): a program of its own for each profile, that the cache must keep apart and give back.
func fakeCompile(p *specs.LinuxSeccomp) (*Program, error) {
	digest, err := profiles.SeccompDigest(p)
	if err != nil {
		return nil, err
	}
	return FromInstructions(digest, []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ERRNO | uint32(len(p.Syscalls))},
	}), nil
}

func cacheFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCachedCompile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "seccomp-cache")
	p := profiles.DefaultSeccomp()
	first, err := CachedCompile(dir, p, fakeCompile)
	if err != nil {
		t.Fatal(err)
	}
	files := cacheFiles(t, dir)
	if len(files) != 1 {
		t.Fatalf("cache holds %v, want one entry and no temporaries", files)
	}
	st, err := os.Stat(files[0])
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("entry mode %v, %v", st.Mode(), err)
	}
	before, _ := os.ReadFile(files[0])

	hit, err := CachedCompile(dir, profiles.DefaultSeccomp(), fakeCompile)
	if err != nil || hit.Sum() != first.Sum() || hit.Digest != first.Digest {
		t.Fatalf("hit: %v", err)
	}

	// A different profile gets its own entry.
	other := profiles.DefaultSeccomp()
	other.Syscalls = other.Syscalls[:1]
	if _, err := CachedCompile(dir, other, fakeCompile); err != nil {
		t.Fatal(err)
	}
	if n := len(cacheFiles(t, dir)); n != 2 {
		t.Fatalf("%d entries after a second profile, want 2", n)
	}

	// Corruption of any kind means recompile and rewrite, never a wrong program.
	for name, data := range map[string][]byte{
		"truncated":   before[:len(before)/2],
		"garbage":     []byte("not an entry"),
		"bpf flipped": flipBPF(t, before),
		"empty":       nil,
	} {
		if err := os.WriteFile(files[0], data, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := CachedCompile(dir, profiles.DefaultSeccomp(), fakeCompile)
		if err != nil || got.Sum() != first.Sum() {
			t.Fatalf("%s entry: %v", name, err)
		}
		if after, _ := os.ReadFile(files[0]); string(after) != string(before) {
			t.Fatalf("%s entry was not rewritten", name)
		}
	}

	// A symlink planted as the entry is not followed.
	target := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.WriteFile(target, before, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Remove(files[0])
	if err := os.Symlink(target, files[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := CachedCompile(dir, profiles.DefaultSeccomp(), fakeCompile); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(files[0]); err != nil || fi.Mode()&os.ModeSymlink != 0 {
		t.Fatal("symlinked entry still in place")
	}
}

// flipBPF changes one byte of the BPF program of an entry (it ends 32 bytes before the entry).
func flipBPF(t *testing.T, entry []byte) []byte {
	t.Helper()
	if len(entry) < 64 {
		t.Fatal("no bpf field")
	}
	out := append([]byte(nil), entry...)
	out[len(out)-40] ^= 0x01
	return out
}

func TestCachedCompileUnwritableDir(t *testing.T) {
	if os.Geteuid() == 0 {
		// root ignores directory permissions; use a path under a regular file instead
		f := filepath.Join(t.TempDir(), "file")
		os.WriteFile(f, nil, 0o600)
		if _, err := CachedCompile(filepath.Join(f, "cache"), profiles.DefaultSeccomp(), fakeCompile); err == nil {
			t.Fatal("cache under a regular file: no error")
		}
		return
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o500)
	defer os.Chmod(dir, 0o700)
	if _, err := CachedCompile(filepath.Join(dir, "cache"), profiles.DefaultSeccomp(), fakeCompile); err == nil {
		t.Fatal("unwritable cache: no error")
	}
}

// TestCached: a lookup by digest finds what CachedCompile stored for the profile of that digest,
// and nothing for another digest, a missing cache or a corrupt entry.
func TestCached(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "seccomp-cache")
	p := profiles.DefaultSeccomp()
	digest, err := profiles.SeccompDigest(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := Cached(dir, digest); ok {
		t.Fatal("a program found in a cache that does not exist")
	}
	stored, err := CachedCompile(dir, p, fakeCompile)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := Cached(dir, digest)
	if !ok || got.Sum() != stored.Sum() || got.Digest != digest || got.Flags != stored.Flags {
		t.Fatalf("lookup of the stored program: %v %+v", ok, got)
	}
	if _, ok := Cached(dir, "sha256:"+strings.Repeat("0", 64)); ok {
		t.Error("a program found for another digest")
	}
	files := cacheFiles(t, dir)
	entry, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(files[0], flipBPF(t, entry), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok := Cached(dir, digest); ok {
		t.Error("a program found in a corrupt entry")
	}
}

// TestCachedCompileRefusesAnotherProfile: a compiler's program for another profile is an error,
// never stored; a compiler's failure is the start's.
func TestCachedCompileRefusesAnotherProfile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "seccomp-cache")
	other := func(p *specs.LinuxSeccomp) (*Program, error) {
		q := *p
		q.Syscalls = q.Syscalls[:1]
		return fakeCompile(&q)
	}
	if _, err := CachedCompile(dir, profiles.DefaultSeccomp(), other); err == nil {
		t.Fatal("a program of another profile accepted")
	}
	failed := errors.New("helper failed")
	if _, err := CachedCompile(dir, profiles.DefaultSeccomp(), func(*specs.LinuxSeccomp) (*Program, error) { return nil, failed }); !errors.Is(err, failed) {
		t.Fatalf("compiler failure: %v", err)
	}
	if files := cacheFiles(t, dir); len(files) != 0 {
		t.Fatalf("cache holds %v after refusals", files)
	}
}
