package images

import (
	"archive/tar"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// TestZstdThroughAdmin: the bulwark CLI links no zstd decoder and decodes zstd layers through
// bulwark-admin (engine.HelperZstd). A zstd rootfs imports and unpacks to its content; a stream
// the decoder fails on midway is refused, not taken as a shorter layer.
func TestZstdThroughAdmin(t *testing.T) {
	st, src := t.TempDir(), t.TempDir()
	plain := mkTar(t, filepath.Join(src, "rootfs.tar"),
		tar.Header{Name: "bin/", Typeflag: tar.TypeDir},
		tar.Header{Name: "bin/app", Typeflag: tar.TypeReg, Linkname: "zstd content"},
		tar.Header{Name: "bin/big", Typeflag: tar.TypeReg, Linkname: string(make([]byte, 1<<20))})
	raw, err := os.ReadFile(plain)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	z := enc.EncodeAll(raw, nil)
	good := filepath.Join(src, "rootfs.tar.zst")
	if err := os.WriteFile(good, z, 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, st, false, "image", "import", good, "--tag", "demo/zstd:1")
	run(t, st, false, "image", "unpack", "demo/zstd:1")
	m, _ := filepath.Glob(filepath.Join(st, "layers", "sha256", "*", "rootfs", "bin", "app"))
	if len(m) != 1 {
		t.Fatalf("unpacked bin/app: %v", m)
	}
	if b, err := os.ReadFile(m[0]); err != nil || string(b) != "zstd content" {
		t.Fatalf("bin/app: %q %v", b, err)
	}
	// The frame cut short: the decoder fails after its first blocks.
	cut := filepath.Join(src, "cut.tar.zst")
	if err := os.WriteFile(cut, z[:len(z)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	refuse(t, st, "zstd decoder", "image", "import", cut, "--tag", "demo/cut:1")
}
