// Package audittest reads a state root's audit log for tests: every record, once the whole chain
// has been verified.
package audittest

import (
	"path/filepath"
	"testing"

	"bulwark.dev/bulwark/audit"
)

// Records returns every record of the audit log under the state root root after verifying the
// whole chain; either failing fails the test.
func Records(t testing.TB, root string) []audit.Record {
	t.Helper()
	dir := filepath.Join(root, "audit")
	if _, err := audit.Verify(dir, nil); err != nil {
		t.Fatalf("audit verify: %v", err)
	}
	recs, err := audit.Query(dir, audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}
