package testenv

import (
	"archive/tar"
	"maps"
	"os"
	"path"
	"slices"
	"testing"
)

// BusyboxTar writes to p a rootfs tar of the static busybox for `bulwark image import`:
// /bin/busybox, a symlink per applet, an /etc/passwd naming root and nobody, and files (path in
// the image → content, with their directories). It returns p.
func BusyboxTar(t testing.TB, p string, applets []string, files map[string]string) string {
	t.Helper()
	bb, err := os.ReadFile(BusyboxPath)
	if err != nil {
		t.Skipf("%s missing (apt-get install busybox-static): %v", BusyboxPath, err)
	}
	out, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	tw := tar.NewWriter(out)
	add := func(h *tar.Header, body string) {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	all := map[string]string{"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"}
	maps.Copy(all, files)
	dirs := []string{"bin/"}
	for name := range all {
		dirs = append(dirs, path.Dir(name)+"/")
	}
	slices.Sort(dirs)
	for _, d := range slices.Compact(dirs) {
		add(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755}, "")
	}
	add(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bb))}, string(bb))
	for _, a := range applets {
		add(&tar.Header{Name: "bin/" + a, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777}, "")
	}
	for _, name := range slices.Sorted(maps.Keys(all)) {
		add(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(all[name]))}, all[name])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}
