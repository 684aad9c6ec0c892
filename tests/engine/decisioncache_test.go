package engine

import (
	"os"
	"path/filepath"
	"testing"

	"bulwark.dev/bulwark/tests/internal/clitest"
)

// TestRunDecisionCached (issue 14): a second `bulwark run` of the same request is decided from the
// decision cache (audited cached, its own input digest: the documents differ in the request id),
// the policy not loaded; under a policy that reads the request id, every run is decided by the
// policy.
func TestRunDecisionCached(t *testing.T) {
	f := newFixture(t)
	decision := func(pol ...string) map[string]any {
		t.Helper()
		id := f.name(t, "cache")
		args := append([]string{"run", "--name", id}, pol...)
		clitest.Must(t, f.root, append(args, "busybox:1", "true")...)
		defer clitest.Must(t, f.root, "rm", id)
		d := find(f.records(t, id), "policy", "decision")
		if d == nil || attr(d, "result") != "allow" {
			t.Fatalf("no allow decision audited for %s: %v", id, d)
		}
		return d
	}
	first, second := decision(), decision()
	if attr(first, "cached") != "" || attr(second, "cached") != "true" {
		t.Errorf("cached: first %q, second %q; want the second from the cache", attr(first, "cached"), attr(second, "cached"))
	}
	if attr(first, "input_digest") == attr(second, "input_digest") {
		t.Error("two requests audited with one input digest: the request id is no longer in the document")
	}

	// The default policy, plus a rule that reads the request id (and changes nothing).
	dir := t.TempDir()
	ents, err := os.ReadDir("../../policy/default")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join("../../policy/default", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	reads := "package bulwark.run\n\nrequest_seen := input.annotations[\"dev.bulwark.request\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "reads_id.rego"), []byte(reads), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if d := decision("--policy-dir", dir); attr(d, "cached") != "" {
			t.Errorf("run %d under a policy reading the request id was answered from the cache", i)
		}
	}
	f.assertNothingLeft(t)
}
