package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteReplacesAndLeavesNoTemporary(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	for _, tc := range []struct {
		data string
		o    Options
		perm os.FileMode
	}{
		{"old", Options{}, 0o600},
		{"new", Options{Perm: 0o644, Sync: true, SyncDir: true}, 0o644},
	} {
		if err := Write(p, []byte(tc.data), tc.o); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != tc.data {
			t.Fatalf("content %q, %v; want %q", got, err, tc.data)
		}
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != tc.perm {
			t.Fatalf("mode %v, %v; want %v", fi.Mode().Perm(), err, tc.perm)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Fatalf("directory holds %d entries, want only state.json", len(ents))
		}
	}
}

// A write whose rename fails leaves neither a partial target nor its temporary file, which is
// named ".<stem>-*<ext>" next to the target.
func TestFailedWriteLeavesNoTemporary(t *testing.T) {
	parent := t.TempDir()
	target := filepath.Join(parent, "ranges.json")
	if err := os.Mkdir(target, 0o700); err != nil {
		t.Fatal(err)
	}
	// rename(2) of a file over a directory fails (EISDIR) after the content was written.
	if err := Write(target, []byte("x"), Options{Sync: true}); err == nil {
		t.Fatal("replacing a directory succeeded")
	}
	if m, _ := filepath.Glob(filepath.Join(parent, ".ranges-*.json")); len(m) != 0 {
		t.Fatalf("temporary files left: %v", m)
	}
}
