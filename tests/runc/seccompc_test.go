package runc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

// TestSeccompCompilerFailsClosed: bulwark-runc links no libseccomp and has bulwark-seccomp,
// beside it, compile the profiles its cache does not hold. Without it, or with one that anyone
// may write, a start that needs a compile is refused with the reason and nothing is created; with
// it the program is cached, and a start that finds it there needs no compiler.
func TestSeccompCompilerFailsClosed(t *testing.T) {
	dir := t.TempDir()
	install := func(name string, mode os.FileMode) {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(filepath.Dir(testenv.RuntimeBin(t)), name))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		os.Remove(p)
		if err := os.WriteFile(p, data, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"bulwark-runc", "bulwark-init", "bulwark-policy"} {
		install(name, 0o755)
	}
	c, leaks := newCLI(t) // an empty runtime root: an empty seccomp cache
	c.bin = filepath.Join(dir, "bulwark-runc")
	bundle := testenv.Bundle(t, testenv.Spec([]string{"/bin/true"}))
	leaks.Dir(bundle)

	r := c.run("run", "--bundle", bundle, leaks.Track(testenv.UniqueID(t)))
	if r.code == 0 || !strings.Contains(r.stderr, "compile") || !strings.Contains(r.stderr, "bulwark-seccomp") {
		t.Errorf("no compiler: exit %d, stderr %q; want a refusal naming bulwark-seccomp", r.code, r.stderr)
	}
	assertNothingCreated(t, c, leaks)

	install("bulwark-seccomp", 0o777)
	r = c.run("run", "--bundle", bundle, leaks.Track(testenv.UniqueID(t)))
	if r.code == 0 || !strings.Contains(r.stderr, "no one else may write") {
		t.Errorf("compiler writable by anyone: exit %d, stderr %q; want a refusal", r.code, r.stderr)
	}
	assertNothingCreated(t, c, leaks)

	install("bulwark-seccomp", 0o755)
	c.ok("run", "--bundle", bundle, leaks.Track(testenv.UniqueID(t)))
	if entries, _ := filepath.Glob(filepath.Join(c.root, "seccomp-cache", "*.entry")); len(entries) == 0 {
		t.Error("the compiled program was not cached")
	}
	// Cached: the next start executes no compiler.
	os.Remove(filepath.Join(dir, "bulwark-seccomp"))
	c.ok("run", "--bundle", bundle, leaks.Track(testenv.UniqueID(t)))
}
