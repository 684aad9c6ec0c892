package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bulwark.dev/bulwark/image/imagetest"
	"bulwark.dev/bulwark/image/internal/untar"
)

// devTar is a rootfs tar as mmdebstrap and debootstrap make them: device nodes and a fifo under
// dev/, plus extra (a special file elsewhere) when given.
func devTar(t *testing.T, extra *tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	mt := time.Unix(1e9, 0)
	for _, h := range []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mt},
		{Name: "./dev/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mt},
		{Name: "./dev/console", Typeflag: tar.TypeChar, Mode: 0o600, Devmajor: 5, Devminor: 1, ModTime: mt},
		{Name: "./dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3, ModTime: mt},
		{Name: "./dev/initctl", Typeflag: tar.TypeFifo, Mode: 0o600, ModTime: mt},
		{Name: "./dev/fd", Typeflag: tar.TypeSymlink, Linkname: "/proc/self/fd", ModTime: mt},
		{Name: "./etc/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mt},
	} {
		tw.WriteHeader(h)
	}
	tw.WriteHeader(&tar.Header{Name: "./etc/hostname", Typeflag: tar.TypeReg, Mode: 0o644, Size: 3, ModTime: mt})
	tw.Write([]byte("box"))
	if extra != nil {
		tw.WriteHeader(extra)
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// TestImportDropsDevNodes (issue 12): a rootfs tar's device nodes and fifos under /dev are dropped
// at import with a note (they failed every run: "dev/console: device nodes and fifos are not
// allowed"), the rest is kept and unpacks; one elsewhere refuses the import itself.
func TestImportDropsDevNodes(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	var notes []string
	desc, err := s.ImportNoted(imagetest.WriteFile(t, src, "debian.tar.gz", devTar(t, nil)), "demo/deb:1", func(n string) { notes = append(notes, n) })
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "dropped 3 device nodes and fifos under /dev") || !strings.Contains(notes[0], "/dev/console") {
		t.Errorf("notes %q", notes)
	}
	rfs, err := s.Rootfs(desc, UnpackOptions{})
	if err != nil {
		t.Fatalf("unpack: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(rfs.Lower[0], "etc/hostname")); err != nil || string(b) != "box" {
		t.Errorf("etc/hostname: %q %v", b, err)
	}
	if l, err := os.Readlink(filepath.Join(rfs.Lower[0], "dev/fd")); err != nil || l != "/proc/self/fd" {
		t.Errorf("dev/fd symlink: %q %v", l, err)
	}
	if _, err := os.Lstat(filepath.Join(rfs.Lower[0], "dev/null")); err == nil {
		t.Error("dev/null was kept")
	}
	for _, h := range []*tar.Header{
		{Name: "./etc/evil", Typeflag: tar.TypeBlock, Mode: 0o600, Devmajor: 8, Devminor: 0},
		{Name: "./run/fifo", Typeflag: tar.TypeFifo, Mode: 0o600},
	} {
		if _, err := s.Import(imagetest.WriteFile(t, src, "bad.tar.gz", devTar(t, h)), "demo/bad:1"); !errors.Is(err, untar.ErrDevice) {
			t.Errorf("%s: import %v, want a device refusal", h.Name, err)
		}
	}
	// A name that climbs out of dev/ is no /dev node.
	if _, err := s.Import(imagetest.WriteFile(t, src, "bad.tar.gz", devTar(t, &tar.Header{Name: "./dev/../etc/evil", Typeflag: tar.TypeChar, Mode: 0o600})), "demo/bad:1"); err == nil {
		t.Error("dev/../etc/evil: imported")
	}
	if ents, _ := os.ReadDir(filepath.Join(s.dir, "ingest")); len(ents) != 0 {
		t.Errorf("left in ingest/: %v", ents)
	}
}

// TestImageLayerDevNodes (issue 12): an image archive (docker save of an imported debootstrap
// tar) whose layer holds device nodes and fifos under /dev is imported with a note, and unpacks
// without them (every run failed at unpack); one elsewhere refuses the import itself.
func TestImageLayerDevNodes(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	plain := func(h *tar.Header) []byte {
		zr, err := gzip.NewReader(bytes.NewReader(devTar(t, h)))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var notes []string
	desc, err := s.ImportNoted(imagetest.WriteFile(t, src, "save.tar", dockerSave(t, plain(nil))), "demo/saved:1", func(n string) { notes = append(notes, n) })
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "layer 0: 3 device nodes and fifos under /dev are dropped at unpack") {
		t.Errorf("notes %q", notes)
	}
	rfs, err := s.Rootfs(desc, UnpackOptions{})
	if err != nil {
		t.Fatalf("unpack: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(rfs.Lower[0], "dev/console")); err == nil {
		t.Error("dev/console was unpacked")
	}
	if b, err := os.ReadFile(filepath.Join(rfs.Lower[0], "etc/hostname")); err != nil || string(b) != "box" {
		t.Errorf("etc/hostname: %q %v", b, err)
	}
	evil := &tar.Header{Name: "./etc/evil", Typeflag: tar.TypeChar, Mode: 0o600, Devmajor: 1, Devminor: 1}
	if _, err := s.Import(imagetest.WriteFile(t, src, "bad.tar", dockerSave(t, plain(evil))), "demo/bad:1"); !errors.Is(err, untar.ErrDevice) || !strings.Contains(err.Error(), "etc/evil") {
		t.Errorf("import of a layer with etc/evil: %v", err)
	}
	if _, err := s.Resolve("demo/bad:1"); err == nil {
		t.Error("the refused image was tagged")
	}
}
