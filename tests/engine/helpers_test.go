package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bulwark.dev/bulwark/tests/internal/clitest"
)

// TestHelpersFailClosed: bulwark links neither OPA nor go-tuf. A run its decision cache cannot
// answer is decided by bulwark-policy beside it; a reference the record of the last full TUF
// refresh cannot answer, and `policy`/`bench`/`trust`, are bulwark-admin's beside it. Without
// either, or with one that anyone else may write, the request is refused with the reason (a run
// creates nothing) — never decided, resolved or served some other way.
func TestHelpersFailClosed(t *testing.T) {
	f := newFixture(t)
	// A policy directory of its own: no decision of it is cached yet.
	pol := t.TempDir()
	if err := os.WriteFile(filepath.Join(pol, "allow.rego"), []byte("package bulwark.run\n\ndecision := {\"allow\": true, \"reasons\": []}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bin, src := t.TempDir(), filepath.Dir(clitest.Bin)
	copyBin := func(name string, mode os.FileMode) {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(bin, name)
		if err := os.WriteFile(p, data, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	copyBin("bulwark", 0o755)
	if _, err := os.Stat(filepath.Join(src, "bulwark-init")); err == nil {
		copyBin("bulwark-init", 0o755)
	}
	defer func(b string) { clitest.Bin = b }(clitest.Bin)
	installed := clitest.Bin
	clitest.Bin = filepath.Join(bin, "bulwark")

	run := func() clitest.Result {
		t.Helper()
		return clitest.Run(t, f.root, "run", "--rm", "--name", f.name(t, "helper"), "--policy-dir", pol, "busybox:1", "true")
	}
	refused := func(what string, r clitest.Result, helper string) {
		t.Helper()
		if r.Code == 0 || !strings.Contains(r.Stderr, helper) {
			t.Errorf("%s: exit %d, stderr %q; want a refusal naming %s", what, r.Code, r.Stderr, helper)
		}
	}
	// No run has refreshed the TUF metadata yet: the reference needs a full refresh.
	refused("run without bulwark-admin, no TUF record", run(), "bulwark-admin")
	f.assertNothingLeft(t)
	// A run of the installed binaries leaves the record of a full refresh: then only the
	// decision is missing.
	clitest.Bin = installed
	clitest.Must(t, f.root, "run", "--rm", "--name", f.name(t, "warm"), "busybox:1", "true")
	clitest.Bin = filepath.Join(bin, "bulwark")
	refused("run without bulwark-policy", run(), "bulwark-policy")
	refused("policy show without bulwark-admin", clitest.Run(t, f.root, "policy", "show"), "bulwark-admin")
	copyBin("bulwark-policy", 0o775)
	copyBin("bulwark-admin", 0o757)
	refused("run with a group-writable bulwark-policy", run(), "bulwark-policy")
	refused("policy show with a bulwark-admin anyone may write", clitest.Run(t, f.root, "policy", "show"), "bulwark-admin")
	f.assertNothingLeft(t)

	copyBin("bulwark-policy", 0o755)
	copyBin("bulwark-admin", 0o755)
	if r := run(); r.Code != 0 {
		t.Fatalf("run with bulwark-policy: exit %d: %s", r.Code, r.Stderr)
	}
	if out := clitest.Must(t, f.root, "policy", "show"); !strings.Contains(out, `"source"`) {
		t.Errorf("policy show through bulwark-admin printed %q", out)
	}
	f.assertNothingLeft(t)
}
