package engine

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"bulwark.dev/bulwark/errdefs"
)

// TestRecordsInBothPlaces: a record in the run root and one on the state root are both listed
// and found; a name is taken in both places; and a claim without a record (a run killed between
// making the directory and writing meta.json) is removed by the next List in either place.
func TestRecordsInBothPlaces(t *testing.T) {
	dir := t.TempDir()
	e, err := Open(Config{Root: filepath.Join(dir, "state"), RunRoot: filepath.Join(dir, "run"), Policies: inProcess(t), Audit: discard{}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := e.createMeta(&Meta{ID: "fg", Remove: true}, true); err != nil {
		t.Fatal(err)
	}
	if _, err := e.createMeta(&Meta{ID: "kept"}, false); err != nil {
		t.Fatal(err)
	}
	if got := e.metaDir("fg"); got != filepath.Join(dir, "run", "engine", "fg") {
		t.Errorf("fg's record is at %s", got)
	}
	if got := e.metaDir("kept"); got != filepath.Join(dir, "state", "engine", "kept") {
		t.Errorf("kept's record is at %s", got)
	}
	for _, c := range []struct {
		id        string
		inRunRoot bool
	}{{"fg", false}, {"fg", true}, {"kept", true}, {"kept", false}} {
		if _, err := e.createMeta(&Meta{ID: c.id}, c.inRunRoot); !errors.Is(err, errdefs.ErrAlreadyExists) {
			t.Errorf("%s claimed again (run root %v): %v, want already in use", c.id, c.inRunRoot, err)
		}
	}
	for _, claim := range []string{filepath.Join(dir, "run", "engine", "dead1"), filepath.Join(dir, "state", "engine", "dead2")} {
		if err := os.Mkdir(claim, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(claim, ".meta-1.json"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cs, err := e.List(Caller{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	if slices.Sort(ids); !slices.Equal(ids, []string{"fg", "kept"}) {
		t.Errorf("listed %v, want fg and kept", ids)
	}
	for _, dead := range []string{"dead1", "dead2"} {
		if _, err := os.Lstat(e.metaDir(dead)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the dead claim %s stays after List: %v", dead, err)
		}
	}
	for _, id := range []string{"fg", "kept"} {
		if err := e.removeStateDir(id); err != nil {
			t.Fatal(err)
		}
	}
	if names, err := e.recordNames(); err != nil || len(names) != 0 {
		t.Errorf("records left: %v %v", names, err)
	}
}
