package landlock

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// tree creates files (paths ending in "/" are directories; "a -> b" is a symlink) under a new root.
func tree(t *testing.T, entries ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, e := range entries {
		if from, to, ok := strings.Cut(e, " -> "); ok {
			if err := os.Symlink(to, filepath.Join(root, from)); err != nil {
				t.Fatal(err)
			}
			continue
		}
		p := filepath.Join(root, e)
		if strings.HasSuffix(e, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func grantsWith(gs []Grant, root string, access Access) []string {
	var out []string
	for _, g := range gs {
		if g.Access&access != 0 {
			out = append(out, strings.TrimPrefix(g.Path, root))
		}
	}
	slices.Sort(out)
	return out
}

func TestPlanWX(t *testing.T) {
	// Stand-ins for the device nodes (Plan only looks at paths); ptmx and console are symlinks as
	// in real containers, console's pointing out of the root and so getting no rule.
	root := tree(t, "bin/sh", "usr/bin/env", "etc/passwd", "init", "tmp/", "run/", "var/tmp/",
		"var/lib/app/data", "var/log/", "proc/", "sys/", "lib -> /tmp", "data/",
		"dev/null", "dev/zero", "dev/full", "dev/random", "dev/urandom", "dev/tty", "dev/pts/ptmx",
		"dev/ptmx -> pts/ptmx", "dev/console -> /dev/null")
	gs, err := Plan(Rules{Root: root, Writable: []string{"/tmp", "/run", "/var/tmp", "data"}})
	if err != nil {
		t.Fatal(err)
	}
	// Execute: every part of the root holding no writable mount, never a writable mount, never
	// /proc, /sys, /dev, never through a symlink.
	wantExec := []string{"/bin", "/etc", "/init", "/usr", "/var/lib", "/var/log"}
	if got := grantsWith(gs, root, accessExecute); !slices.Equal(got, wantExec) {
		t.Errorf("execute granted on %v, want %v", got, wantExec)
	}
	// Write: only the writable mounts and the device files.
	wantWrite := []string{"/data", "/dev/full", "/dev/null", "/dev/pts", "/dev/pts/ptmx",
		"/dev/random", "/dev/tty", "/dev/urandom", "/dev/zero", "/run", "/tmp", "/var/tmp"}
	if got := grantsWith(gs, root, accessWriteFile); !slices.Equal(got, wantWrite) {
		t.Errorf("write granted on %v, want %v", got, wantWrite)
	}
	// No grant ever combines write and execute, and nothing may create device nodes.
	for _, g := range gs {
		if g.Access&accessExecute != 0 && g.Access&(fsWrite) != 0 {
			t.Errorf("%s gets both write and execute", g.Path)
		}
		if g.Access&(accessMakeChar|accessMakeBlock) != 0 {
			t.Errorf("%s may create device nodes", g.Path)
		}
		if g.Access&accessIoctlDev != 0 && !strings.Contains(g.Path, "/dev/") {
			t.Errorf("%s gets IOCTL_DEV", g.Path)
		}
		if g.Access&^fsHandled != 0 {
			t.Errorf("%s: access %v outside the handled set", g.Path, g.Access)
		}
	}
	if gs[0].Path != root || gs[0].Access != fsRead {
		t.Errorf("first grant %+v, want read on the root", gs[0])
	}
}

func TestPlanNoWritable(t *testing.T) {
	root := tree(t, "bin/sh", "dev/", "proc/")
	gs, err := Plan(Rules{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if got := grantsWith(gs, root, accessExecute); !slices.Equal(got, []string{"/bin"}) {
		t.Errorf("execute granted on %v", got)
	}
}

func TestPlanRefusesBadPaths(t *testing.T) {
	root := tree(t, "tmp/", "real/", "lnk -> real", "abs -> /tmp")
	for _, w := range []string{"/lnk", "/abs", "/missing", "/lnk/x"} {
		if _, err := Plan(Rules{Root: root, Writable: []string{w}}); err == nil {
			t.Errorf("Plan accepted writable %q", w)
		}
	}
	if _, err := Plan(Rules{Root: filepath.Join(root, "lnk")}); err == nil {
		t.Error("Plan accepted a symlinked root")
	}
	if _, err := Plan(Rules{}); err == nil {
		t.Error("Plan accepted an empty root")
	}
	// "../" cannot climb out of the root: it lands on the root's own tmp.
	gs, err := Plan(Rules{Root: root, Writable: []string{"../../tmp"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := grantsWith(gs, root, accessWriteFile); !slices.Contains(got, "/tmp") {
		t.Errorf("../../tmp resolved to %v", got)
	}
}

// TestPlanWritableExec: a writable mount granted exec (a volume policy granted it) gets write and
// execute on itself only; the wider execute grants still skip it; a noexec writable mount (or
// /proc, /sys, /dev) below it is refused, since Landlock rights are inherited.
func TestPlanWritableExec(t *testing.T) {
	root := tree(t, "bin/sh", "tmp/", "srv/app/", "srv/other/x", "proc/", "dev/")
	gs, err := Plan(Rules{Root: root, Writable: []string{"/tmp"}, WritableExec: []string{"/srv/app"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := grantsWith(gs, root, accessExecute), []string{"/bin", "/srv/app", "/srv/other"}; !slices.Equal(got, want) {
		t.Errorf("execute granted on %v, want %v", got, want)
	}
	if got, want := grantsWith(gs, root, accessWriteFile), []string{"/srv/app", "/tmp"}; !slices.Equal(got, want) {
		t.Errorf("write granted on %v, want %v", got, want)
	}
	for _, r := range []Rules{
		{Root: root, Writable: []string{"/srv/app"}, WritableExec: []string{"/srv"}},
		{Root: root, WritableExec: []string{"/"}},
		{Root: root, WritableExec: []string{"/missing"}},
	} {
		if _, err := Plan(r); err == nil {
			t.Errorf("Plan accepted %+v", r)
		}
	}
}

// TestPlanWritableRoot: a granted writable root is writable everywhere below the root, and
// execution is granted where it was (W^X given up on the root only: /tmp stays without it).
func TestPlanWritableRoot(t *testing.T) {
	root := tree(t, "bin/sh", "tmp/", "proc/")
	gs, err := Plan(Rules{Root: root, Writable: []string{"/tmp"}, WritableRoot: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := grantsWith(gs, root, accessWriteFile); !slices.Equal(got, []string{"", "/tmp"}) {
		t.Errorf("write granted on %v", got)
	}
	if got := grantsWith(gs, root, accessExecute); !slices.Equal(got, []string{"/bin"}) {
		t.Errorf("execute granted on %v", got)
	}
}

// A writable bind of a regular file (CRI's /etc/hostname, kubelet's termination log) gets only
// file rights: Landlock refuses directory rights on a file with EINVAL, which failed the start of
// every Kubernetes pod container (issue 15). Nor is it executable (W^X): the file itself was
// granted execute as a file of a directory holding a writable mount.
func TestPlanWritableFile(t *testing.T) {
	root := tree(t, "etc/hostname", "tmp/")
	gs, err := Plan(Rules{Root: root, Writable: []string{"/etc/hostname", "/tmp"}})
	if err != nil {
		t.Fatal(err)
	}
	dirRights := uint64(accessReadDir | accessMakeReg | accessRemoveFile | accessMakeDir | accessRefer)
	fileRights := uint64(accessReadFile | accessWriteFile | accessTruncate)
	for _, g := range gs {
		switch strings.TrimPrefix(g.Path, root) {
		case "/etc/hostname":
			if uint64(g.Access)&dirRights != 0 || uint64(g.Access)&fileRights != fileRights || uint64(g.Access)&uint64(accessExecute) != 0 {
				t.Errorf("writable file granted %b", g.Access)
			}
		case "/tmp":
			if uint64(g.Access)&dirRights == 0 {
				t.Errorf("writable directory lost its directory rights: %b", g.Access)
			}
		}
	}
}

// TestCheckRealMatchesKernelPath: the one-call walk without symlinks (openat2) accepts exactly the
// paths whose kernel path (an O_PATH descriptor's /proc/self/fd link, what checkReal compared
// before) is the path itself, for every kind of symlink on the way; and resolveDevice, which reads
// a plain link itself (plainLink), finds the kernel's path of every one.
func TestCheckRealMatchesKernelPath(t *testing.T) {
	root := tree(t, "real/sub/f", "tmp/", "lnk -> real", "abs -> /tmp", "real/up -> ..", "real/self -> sub",
		"dangling -> nowhere", "real/sub/back -> ../../tmp", "real/dot -> ./sub/f", "real/sub/ptmx -> f",
		"chain -> lnk/sub", "chain2 -> real/self", "real/sub/up2 -> ../sub/f")
	for _, rel := range []string{"", "/real", "/real/sub", "/real/sub/f", "/tmp", "/lnk", "/lnk/sub", "/abs",
		"/real/up", "/real/up/tmp", "/real/self/f", "/dangling", "/missing", "/real/sub/back", "/real/sub/f/x",
		"/real/dot", "/real/sub/ptmx", "/lnk/sub/ptmx", "/lnk/self", "/chain", "/chain2", "/real/sub/up2"} {
		p := root + rel
		real, err := realPath(p)
		want := err == nil && real == p
		if got := checkReal(root, p) == nil; got != want {
			t.Errorf("%s: checkReal accepts %v, kernel path %q (%v)", rel, got, real, err)
		}
		dev, ok, derr := resolveDevice(root, p)
		if wantErr := err != nil && !errors.Is(err, unix.ENOENT); (derr != nil) != wantErr {
			t.Errorf("%s: resolveDevice error %v; kernel path error %v", rel, derr, err)
			continue
		}
		if wantDev := real != "" && within(root, real); ok != wantDev || (ok && dev != real) {
			t.Errorf("%s: resolveDevice = %q, %v; kernel path %q", rel, dev, ok, real)
		}
	}
	// The plain links are read without /proc; the others are left to it.
	for rel, plain := range map[string]bool{"/real/sub/ptmx": true, "/real/dot": true, "/real/self": true,
		"/lnk/sub/ptmx": false, "/chain": false, "/chain2": false, "/real/sub/up2": false, "/abs": true} {
		if _, ok := plainLink(root + rel); ok != plain {
			t.Errorf("%s: plainLink resolves it: %v, want %v", rel, ok, plain)
		}
	}
}
