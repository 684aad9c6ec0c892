package cgroups

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
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

// TestReadIDs: readIDs lists a cgroupfs directory whole (every name, with the inode number a stat
// of the file gives), whatever the buffer's size, and refuses a directory of another filesystem
// and a malformed batch.
func TestReadIDs(t *testing.T) {
	var dir string
	for _, d := range []string{"/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids", "/sys/fs/cgroup"} {
		var fs unix.Statfs_t
		if unix.Statfs(d, &fs) == nil && (fs.Type == unix.CGROUP_SUPER_MAGIC || fs.Type == unix.CGROUP2_SUPER_MAGIC) {
			dir = d
			break
		}
	}
	if dir == "" {
		t.Skip("no cgroupfs directory")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	for range 2 { // the second from a buffer that direntBufs reuses
		if _, err := unix.Seek(dfd, 0, 0); err != nil {
			t.Fatal(err)
		}
		ids := readIDs(dfd)
		if len(ids) != len(entries)+2 { // with . and ..
			t.Fatalf("readIDs(%s): %d names, want %d", dir, len(ids), len(entries)+2)
		}
		for _, e := range entries {
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(dir, e.Name()), &st); err != nil {
				t.Fatal(err)
			}
			if id, ok := ids[e.Name()]; !ok || id != st.Ino {
				t.Errorf("readIDs(%s)[%s] = %d, %v; want %d", dir, e.Name(), id, ok, st.Ino)
			}
		}
	}
	tmp, err := unix.Open(t.TempDir(), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(tmp)
	if ids := readIDs(tmp); ids != nil {
		t.Errorf("readIDs of a directory not on cgroupfs = %v, want nil", ids)
	}
	rec := make([]byte, 24)
	binary.LittleEndian.PutUint16(rec[16:], 24)
	if n, ok := countDirents(rec); !ok || n != 1 {
		t.Errorf("countDirents(one record) = %d, %v", n, ok)
	}
	for _, b := range [][]byte{append(rec, 0), rec[:20], make([]byte, 24)} {
		if _, ok := countDirents(b); ok {
			t.Errorf("countDirents(%x) accepted a malformed batch", b)
		}
	}
}
