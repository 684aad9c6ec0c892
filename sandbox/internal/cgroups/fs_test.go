package cgroups

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestPlainFileIO: the system-call readers and writers read a file whole past their first buffer,
// report a missing file as os.ErrNotExist (readAll) and ErrUnsupported (writeValues), and write
// every value.
func TestPlainFileIO(t *testing.T) {
	dir := t.TempDir()
	big := bytes.Repeat([]byte("0123456789abcdef\n"), 300)
	if err := os.WriteFile(filepath.Join(dir, "big"), big, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := readAll(filepath.Join(dir, "big"))
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("readAll: %d bytes, %v; want %d", len(got), err, len(big))
	}
	if _, err := readAll(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("readAll of a missing file: %v", err)
	}
	if err := writeValues(dir, "missing", "1"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("writeValues to a missing file: %v", err)
	}
	// Empty, as a cgroup interface file reads to a writer: writeValues does not truncate.
	if err := os.WriteFile(filepath.Join(dir, "f"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeValues(dir, "f", "a", "bc"); err != nil {
		t.Fatal(err)
	}
	if s, err := readFile(dir, "f"); err != nil || s != "abc" {
		t.Errorf("after writeValues: %q, %v", s, err)
	}
	if !exists(dir, "f") || exists(dir, "missing") {
		t.Error("exists")
	}
}

// TestOpenLeafElsewhere: outside cgroupfs (no kernfs handles) openLeaf opens by path, and a
// missing file is still os.ErrNotExist (writeLeaf: ErrUnsupported).
func TestOpenLeafElsewhere(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeLeaf(dir, "f", "ab", "c"); err != nil {
		t.Fatal(err)
	}
	if s, err := readLeaf(dir, "f"); err != nil || s != "abc" {
		t.Errorf("readLeaf after writeLeaf: %q, %v", s, err)
	}
	if err := writeLeaf(dir, "missing", "1"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("writeLeaf to a missing file: %v", err)
	}
	if err := writeLeaf(filepath.Join(dir, "nodir"), "f", "1"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("writeLeaf in a missing directory: %v", err)
	}
}
