package du

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSize: allocated blocks, hardlinks once, a sparse file's holes and a symlink's target not
// counted, a missing tree 0; a Counter does not count an inode twice across trees.
func TestSize(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Link(big, filepath.Join(dir, "link"))
	sparse, _ := os.Create(filepath.Join(dir, "sparse"))
	sparse.Truncate(1 << 30)
	sparse.Close()
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "x"), make([]byte, 4<<20), 0o644)
	os.Symlink(outside, filepath.Join(dir, "out"))
	n, err := Size(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n < 1<<20 || n > 1<<20+64<<10 {
		t.Errorf("size %d, want about 1 MiB", n)
	}
	if n, err := Size(filepath.Join(dir, "missing")); n != 0 || err != nil {
		t.Errorf("missing: %d %v", n, err)
	}
	c := New()
	first, _ := c.Size(dir)
	again, _ := c.Size(dir)
	if first != n || again != 0 {
		t.Errorf("counter: %d then %d, want %d then 0", first, again, n)
	}
}
