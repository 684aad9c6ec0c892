package besideexe

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// Stat refuses what Open refuses — a missing file, a symlink (even to a good file), a directory,
// a file others may write, one that is not executable — and identifies what Open opens.
func TestStatChecksAsOpen(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(exe)
	prefix := fmt.Sprintf("besideexe-test-%d-", os.Getpid())
	mk := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, prefix+name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(p) })
		return prefix + name
	}
	good := mk("good", 0o755)
	link := prefix + "link"
	if err := os.Symlink(filepath.Join(dir, good), filepath.Join(dir, link)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(filepath.Join(dir, link)) })
	sub := prefix + "dir"
	if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(filepath.Join(dir, sub)) })

	for _, name := range []string{prefix + "missing", link, sub, mk("group-writable", 0o775), mk("others-writable", 0o757), mk("not-executable", 0o644)} {
		if _, _, _, err := Stat(name); err == nil {
			t.Errorf("Stat(%s) accepted it", name)
		}
		if fd, _, _, err := Open(name); err == nil {
			t.Errorf("Open(%s) accepted it (fd %d)", name, fd)
		}
	}
	path, st, own, err := Stat(good)
	if err != nil {
		t.Fatal(err)
	}
	var self unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &self); err != nil || self.Ino != own.Ino || self.Dev != own.Dev {
		t.Errorf("own stat %d:%d, /proc/self/exe %d:%d (%v)", own.Dev, own.Ino, self.Dev, self.Ino, err)
	}
	fd, opath, ost, err := Open(good)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = os.NewFile(uintptr(fd), opath).Close() }()
	if path != opath || st.Dev != ost.Dev || st.Ino != ost.Ino || st.Ctim != ost.Ctim {
		t.Errorf("Stat %s %d:%d, Open %s %d:%d", path, st.Dev, st.Ino, opath, ost.Dev, ost.Ino)
	}
}
