package engine

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRemoveEmptyDirs: trees of empty directories go, up to the depth (deep/a/b, holding c,
// is below it); a file, a symbolic link
// (and what it points to) and the directories holding them stay.
func TestRemoveEmptyDirs(t *testing.T) {
	root := filepath.Join(t.TempDir(), "run")
	outside := t.TempDir()
	for _, d := range []string{"shared/cg/cpu", "shared/cg/memory", "shared/empty", "containers", "keep/sub", "deep/a/b/c"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "keep/sub/file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	removeEmptyDirs(root, 3)
	for path, want := range map[string]bool{
		"shared": false, "containers": false, "keep/sub/file": true, "link": true,
		"deep/a/b/c": true, ".": true, // below the depth
	} {
		if _, err := os.Lstat(filepath.Join(root, path)); (err == nil) != want {
			t.Errorf("%s: present %v, want %v", path, err == nil, want)
		}
	}
	if _, err := os.Stat(outside); err != nil {
		t.Errorf("the link's target: %v", err)
	}
	os.Remove(filepath.Join(root, "link"))
	os.RemoveAll(filepath.Join(root, "keep"))
	os.RemoveAll(filepath.Join(root, "deep"))
	removeEmptyDirs(root, 3)
	if _, err := os.Lstat(root); err == nil {
		t.Error("an empty run root stayed")
	}
}

// TestCloseTidiesUnlessSupervised: Close tidies an empty run root, unless a run of the engine
// was watched by the state root's supervisor serving that run root (it tidies it when it
// leaves).
func TestCloseTidiesUnlessSupervised(t *testing.T) {
	for _, tended := range []bool{false, true} {
		dir := t.TempDir()
		run := filepath.Join(dir, "run")
		e, err := Open(Config{Root: filepath.Join(dir, "state"), RunRoot: run, Policies: inProcess(t), Audit: discard{}})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(run, "shared", "cg", "cpu"), 0o700); err != nil {
			t.Fatal(err)
		}
		e.runRootTended.Store(tended)
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(run); (err == nil) != tended {
			t.Errorf("supervised %v: the run root is there: %v", tended, err == nil)
		}
	}
}
