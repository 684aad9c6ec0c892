package testenv

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// BusyboxPath is where Debian's busybox-static installs the static busybox.
const BusyboxPath = "/usr/bin/busybox"

// BusyboxRootfs lays out a busybox-static rootfs in a fresh temp dir and returns its path:
// /bin/busybox plus one symlink per applet, the probe at /bin/probe, and the empty directories an
// image has (proc, sys, dev, tmp, run, var/tmp, etc). Files are owned by host root, as an
// unpacked image is: making them fit the container's id mapping is the runtime's job.
func BusyboxRootfs(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	traversable(t, dir)
	return layoutRootfs(t, filepath.Join(dir, "rootfs"))
}

// traversable opens the test's 0700 temp dirs for traversal (0711): the container's mapped root
// must reach its bundle, as it can under /var/lib or /run on a real host.
func traversable(t testing.TB, dir string) {
	t.Helper()
	tmp := filepath.Clean(os.TempDir())
	for d := dir; d != tmp && d != "/" && strings.HasPrefix(d, tmp+"/"); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
}

func layoutRootfs(t testing.TB, root string) string {
	t.Helper()
	if _, err := os.Stat(BusyboxPath); err != nil {
		t.Skipf("%s missing (apt-get install busybox-static): %v", BusyboxPath, err)
	}
	for _, d := range []string{"bin", "sbin", "usr/bin", "proc", "sys", "dev", "tmp", "run", "var/tmp", "etc", "root", "mnt"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	copyFile(t, BusyboxPath, filepath.Join(root, "bin", "busybox"), 0o755)
	copyFile(t, Probe(t), filepath.Join(root, "bin", "probe"), 0o755)
	out, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	for _, a := range strings.Fields(string(out)) {
		if a == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(root, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
	writeFile(t, filepath.Join(root, "etc", "group"), "root:x:0:\nnogroup:x:65534:\n")
	return root
}

// Bundle lays out a bundle (busybox rootfs at "rootfs" and config.json from spec) in a fresh temp
// dir and returns the bundle path. spec.Root.Path is set to "rootfs".
func Bundle(t testing.TB, spec *specs.Spec) string {
	t.Helper()
	dir := t.TempDir()
	traversable(t, dir)
	layoutRootfs(t, filepath.Join(dir, "rootfs"))
	spec.Root = &specs.Root{Path: "rootfs", Readonly: spec.Root != nil && spec.Root.Readonly}
	WriteConfig(t, dir, spec)
	return dir
}

// WriteConfig writes spec as dir/config.json.
func WriteConfig(t testing.TB, dir string, spec *specs.Spec) {
	t.Helper()
	b, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "config.json"), string(b))
}

// ReadConfig reads dir/config.json back.
func ReadConfig(t testing.TB, dir string) *specs.Spec {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func copyFile(t testing.TB, src, dst string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(fmt.Errorf("copy %s: %w", src, err))
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t testing.TB, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
