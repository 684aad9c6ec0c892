package engine

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRemoveDeadClaims: a name claimed by a run killed before its record was in place goes,
// also when the kill came while the record's temporary file was being written; a directory with
// a record, or with anything else, stays.
func TestRemoveDeadClaims(t *testing.T) {
	root := t.TempDir()
	e := &Engine{cfg: Config{Root: root}}
	mk := func(id string, files ...string) {
		t.Helper()
		if err := os.MkdirAll(e.metaDir(id), 0o700); err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if err := os.WriteFile(filepath.Join(e.metaDir(id), f), []byte("{"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	mk("empty")
	mk("torn", ".meta-123456.json")
	mk("recorded", "meta.json")
	mk("other", "bundle")
	e.removeDeadClaims()
	for id, want := range map[string]bool{"empty": false, "torn": false, "recorded": true, "other": true} {
		if _, err := os.Stat(e.metaDir(id)); (err == nil) != want {
			t.Errorf("%s: exists=%v, want %v", id, err == nil, want)
		}
	}
}
