package sandbox

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// sameFile reports whether the O_PATH descriptor fd is the file at path.
func sameFile(t *testing.T, fd int, path string) bool {
	t.Helper()
	var a, b unix.Stat_t
	if err := unix.Fstat(fd, &a); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(path, &b); err != nil {
		t.Fatal(err)
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

// The setup helper beside the runtime binary is used only by a stamped build, and only as a
// regular executable file of the binary's owner that no one else may write.
func TestSetupHelper(t *testing.T) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	helper := filepath.Join(filepath.Dir(exe), HelperName)
	defer os.Remove(helper)
	old := buildID
	defer func() { buildID = old }()

	use := func(stamp string) (bool, error) {
		t.Helper()
		buildID = stamp
		fd, err := setupHelper()
		if err != nil {
			return false, err
		}
		defer unix.Close(fd)
		if sameFile(t, fd, exe) {
			return false, nil
		}
		if !sameFile(t, fd, helper) {
			t.Fatal("setupHelper opened neither the runtime binary nor the helper")
		}
		return true, nil
	}
	if got, err := use("b1"); got || err != nil {
		t.Fatalf("no helper: used %v, %v; want the runtime binary", got, err)
	}
	if err := os.WriteFile(helper, []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := use(""); got || err != nil {
		t.Fatalf("unstamped build: used %v, %v; want the runtime binary", got, err)
	}
	if got, err := use("b1"); !got || err != nil {
		t.Fatalf("stamped build: used %v, %v; want the helper", got, err)
	}
	for name, spoil := range map[string]func() error{
		"group-writable": func() error { return os.Chmod(helper, 0o775) },
		"not executable": func() error { return os.Chmod(helper, 0o644) },
		"a symlink": func() error {
			os.Remove(helper)
			return os.Symlink(exe, helper)
		},
		"a directory": func() error {
			os.Remove(helper)
			return os.Mkdir(helper, 0o755)
		},
	} {
		os.RemoveAll(helper)
		if err := os.WriteFile(helper, []byte("#!/bin/true\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := spoil(); err != nil {
			t.Fatal(err)
		}
		if got, err := use("b1"); err == nil {
			t.Errorf("helper %s: used %v without an error", name, got)
		}
	}
	os.RemoveAll(helper)
}
