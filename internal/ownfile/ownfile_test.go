package ownfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	own := filepath.Join(dir, "own")
	if err := os.WriteFile(own, []byte("record"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := Read(own, 64); string(got) != "record" {
		t.Fatalf("own 0600 file: %q", got)
	}
	if got := Read(own, 3); got != nil {
		t.Fatalf("larger than max: %q", got)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(own, link); err != nil {
		t.Fatal(err)
	}
	if got := Read(link, 64); got != nil {
		t.Fatalf("symlink followed: %q", got)
	}
	if err := os.Chmod(own, 0o640); err != nil {
		t.Fatal(err)
	}
	if got := Read(own, 64); got != nil {
		t.Fatalf("group-readable file: %q", got)
	}
	if got := Read(filepath.Join(dir, "missing"), 64); got != nil {
		t.Fatalf("missing file: %q", got)
	}
}
