package sandbox

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseOverlayOptions(t *testing.T) {
	for _, c := range []struct {
		opts string
		want []string
	}{
		{"rw,lowerdir=/l1:/l2,upperdir=/u,workdir=/w,uuid=on", []string{"/u", "/l1", "/l2"}},
		{"ro,lowerdir=/a\\072b:/c\\054d\\040e", []string{"/a:b", "/c,d e"}},
		{"rw,lowerdir+=/l1,lowerdir+=/l2,upperdir=/u,workdir=/w", []string{"/u", "/l1", "/l2"}},
	} {
		got, err := parseOverlayOptions(c.opts)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("parse(%q) = %q, %v; want %q", c.opts, got, err, c.want)
		}
	}
	for _, bad := range []string{
		"rw,upperdir=/u,workdir=/w",       // no lower
		"rw,lowerdir=/l1::/data",          // data-only layers
		"rw,lowerdir+=/l1,datadir+=/data", // data-only layers
		"rw,lowerdir=relative",
		"rw,lowerdir=/l\\07",
	} {
		if got, err := parseOverlayOptions(bad); err == nil {
			t.Errorf("parse(%q) = %q, want an error", bad, got)
		}
	}
}

// overlayTestEnv marks the re-executed test process that runs TestOverlayRootfs's body in its
// own private mount namespace, where it may mount the overlay.
const overlayTestEnv = "BULWARK_TEST_OVERLAY_CHILD"

// TestOverlayRootfs: a rootfs that is an overlay mount (containerd's overlayfs snapshotter) cannot
// be idmapped itself; the container gets an overlay rebuilt from idmapped layers: the upper's and
// every lower's files, whiteouts and opaque directories honoured, owned by the container's root,
// read-only. The test
// binary re-runs this test in a private mount namespace (Go makes "/" private there), which
// makes the overlay and the container and dies with them.
func TestOverlayRootfs(t *testing.T) {
	needRoot(t)
	if os.Getenv(overlayTestEnv) == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestOverlayRootfs$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), overlayTestEnv+"=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
		out, err := cmd.CombinedOutput()
		if err == nil && strings.Contains(string(out), "--- SKIP") {
			t.Skipf("%s", out)
		}
		if err != nil || !strings.Contains(string(out), "--- PASS: TestOverlayRootfs") {
			t.Fatalf("in a private mount namespace: %v\n%s", err, out)
		}
		return
	}
	leakCheck(t, "ovl1")
	r := newTestRuntime(t)
	base, spec := busyboxBundle(t) // base/rootfs: the bottom layer
	dir := t.TempDir()
	// The lower layer is named as Docker's overlay2 names it: by a link in overlay2/l/ (its
	// idmapped mount failed with "not a directory (mode 0120777)").
	lower, upper, work, mnt := filepath.Join(dir, "overlay2", "abc", "diff"), filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "rootfs")
	for _, d := range []string{lower, upper, work, mnt, filepath.Join(dir, "overlay2", "l")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../abc/diff", filepath.Join(dir, "overlay2", "l", "ABC")); err != nil {
		t.Fatal(err)
	}
	for p, s := range map[string]string{
		filepath.Join(lower, "marker-lower"): "lower\n", filepath.Join(lower, "marker-gone"): "deleted\n",
		filepath.Join(upper, "marker-upper"): "upper\n",
	} {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A whiteout in the upper layer (as the snapshotter leaves after an rm) hides the lower file.
	if err := unix.Mknod(filepath.Join(upper, "marker-gone"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	// An opaque directory in the upper layer (a directory the image or container replaced) hides
	// the lower one's files; the marker is a trusted.* xattr only the host can read.
	if err := os.MkdirAll(filepath.Join(lower, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(lower, "d", "replaced"), []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(upper, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(filepath.Join(upper, "d"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	opts := "lowerdir=" + filepath.Join(dir, "overlay2", "l", "ABC") + ":" + filepath.Join(base, "rootfs") + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", mnt, "overlay", 0, opts); err != nil {
		t.Fatalf("mount overlay: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })

	spec.Root.Path = mnt
	spec.Process.Args = []string{"/bin/sh", "-c",
		"cat /marker-upper /marker-lower; test -e /marker-gone || echo gone; " +
			"ls -ln /marker-upper /bin/busybox | while read m l u g r; do echo owner $u:$g; done; " +
			"touch /x 2>/dev/null || echo read-only; ls -A /d; stat -c %a /"}
	code, out, errOut := run(t, r, "ovl1", base, spec)
	want := "upper\nlower\ngone\nowner 0:0\nowner 0:0\nread-only\n755\n"
	if code != 0 || out != want {
		t.Fatalf("exit %d\nout %q\nwant %q\nerr %s", code, out, want, errOut)
	}
	// /run is no layer's: its mountpoint went to the child's tmpfs upper, not the caller's.
	for _, d := range []string{upper, lower, filepath.Join(base, "rootfs")} {
		if _, err := os.Stat(filepath.Join(d, "run")); err == nil {
			t.Errorf("the runtime wrote a mountpoint into the caller's layer %s", d)
		}
	}
}

// TestOpenLinkedLayer: an overlay2 l/ link is followed only beneath its overlay2 directory.
func TestOpenLinkedLayer(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"overlay2/l", "overlay2/abc/diff", "outside"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range map[string]string{"OK": "../abc/diff", "UP": "../../outside", "ABS": filepath.Join(dir, "outside"), "ETC": "/etc"} {
		if err := os.Symlink(target, filepath.Join(dir, "overlay2", "l", name)); err != nil {
			t.Fatal(err)
		}
	}
	fd, err := openLinkedLayer(filepath.Join(dir, "overlay2", "l", "OK"))
	if err != nil {
		t.Fatal(err)
	}
	real, _ := os.Readlink(fdPath(fd))
	unix.Close(fd)
	if real != filepath.Join(dir, "overlay2", "abc", "diff") {
		t.Errorf("l/OK resolved to %s", real)
	}
	for _, name := range []string{"UP", "ABS", "ETC"} {
		if fd, err := openLinkedLayer(filepath.Join(dir, "overlay2", "l", name)); err == nil {
			unix.Close(fd)
			t.Errorf("l/%s: a link out of overlay2 was followed", name)
		}
	}
}
