package sandbox

import (
	"os"
	"path/filepath"
	"testing"

	"bulwark.dev/bulwark/sandbox/setup"
	"golang.org/x/sys/unix"
)

// TestGeneratedFilesShared: containers of one id range with the same content share one
// read-only file, another range gets its own, and the last container to release a file removes
// it.
func TestGeneratedFilesShared(t *testing.T) {
	r, err := New(Options{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(r.generatedDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	dir := func(id string) string {
		d := filepath.Join(r.opts.Root, "containers", id)
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		return d
	}
	a, b, c := dir("a"), dir("b"), dir("c")
	const hosts = "127.0.0.1\tlocalhost\n"
	pa, err := r.linkGenerated(a, 100000, hosts)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := r.linkGenerated(b, 100000, hosts)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := r.linkGenerated(c, 200000, hosts)
	if err != nil {
		t.Fatal(err)
	}
	if pa != pb {
		t.Errorf("one range, one content: %s and %s, want one shared file", pa, pb)
	}
	if pc == pa {
		t.Errorf("another id range shares %s", pc)
	}
	for _, p := range []string{pa, pc} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o444 {
			t.Errorf("%s mode %v, want 0444", p, fi.Mode())
		}
		if got, _ := os.ReadFile(p); string(got) != hosts {
			t.Errorf("%s holds %q", p, got)
		}
	}
	// The rest of a state directory goes with the links, a directory in it too.
	for _, f := range []string{stateName, "spec.json", "sub/x"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(a, f)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(a, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.removeState(a); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(a); !os.IsNotExist(err) {
		t.Errorf("state directory %s still there: %v", a, err)
	}
	if err := r.removeState(a); err != nil {
		t.Errorf("removing a removed state: %v", err)
	}
	if _, err := os.Stat(pa); err != nil {
		t.Errorf("released while b still uses it: %v", err)
	}
	if err := r.removeState(b); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pa); !os.IsNotExist(err) {
		t.Errorf("the last user released %s, still there: %v", pa, err)
	}
	if _, err := os.Stat(pc); err != nil {
		t.Errorf("c's file went with a's and b's: %v", err)
	}
	// Made again when a new container needs it.
	if p, err := r.linkGenerated(dir("a"), 100000, hosts); err != nil || p != pa {
		t.Errorf("relink after release: %s, %v", p, err)
	}
	ents, _ := os.ReadDir(r.generatedDir())
	for _, e := range ents {
		if e.Name()[0] == '.' {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

// TestGeneratedFilesOnDiskRootNotShared: on a state root that is not a tmpfs, the runtime
// donates nothing and leaves the files to the child (no journalled metadata on the start path).
func TestGeneratedFilesOnDiskRootNotShared(t *testing.T) {
	root := t.TempDir()
	var fs unix.Statfs_t
	if err := unix.Statfs(root, &fs); err != nil || fs.Type == unix.TMPFS_MAGIC {
		t.Skipf("the temp dir %s is a tmpfs (or statfs failed: %v)", root, err)
	}
	r, err := New(Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &setup.Config{Files: generatedFiles("h", nil)}
	fds, err := r.donateGenerated(cfg, t.TempDir(), 100000, []int{7})
	if err != nil || len(fds) != 1 {
		t.Fatalf("donated %v, %v; want nothing more", fds, err)
	}
	for _, f := range cfg.Files {
		if f.SrcFD != -1 || f.Content == "" {
			t.Errorf("%s: SrcFD %d, content %q; want the child to write it", f.Dest, f.SrcFD, f.Content)
		}
	}
	if _, err := os.Stat(r.generatedDir()); !os.IsNotExist(err) {
		t.Errorf("shared files dir made on a disk root: %v", err)
	}
}
