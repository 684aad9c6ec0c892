package images

import (
	"archive/tar"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestImageBombs (issue 8 §5) through the CLI: a gzip layer of zeros is refused by the
// compression-ratio limit, the error naming the layer and the limit; an operator who raises the
// limit gets it unpacked, and its zeros take no disk.
func TestImageBombs(t *testing.T) {
	const size = 96 << 20 // past the 64 MiB every layer may reach whatever its ratio
	st, src := t.TempDir(), t.TempDir()
	p := filepath.Join(src, "zeros.tar.gz")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Mode: 0o644, Size: size})
	chunk := make([]byte, 1<<20)
	for range size >> 20 {
		tw.Write(chunk)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	f.Close()
	run(t, st, false, "image", "import", p, "--tag", "bomb/zeros:1")
	msg := run(t, st, true, "image", "unpack", "bomb/zeros:1")
	for _, want := range []string{"layer 0 (sha256:", "compression ratio limit", "100×"} {
		if !strings.Contains(msg, want) {
			t.Errorf("refusal %q does not say %q", msg, want)
		}
	}
	refuse(t, st, "image size limit", "image", "unpack", "--max-layer-ratio", "100000", "--max-image-size", "32m", "bomb/zeros:1")
	run(t, st, false, "image", "unpack", "--max-layer-ratio", "100000", "bomb/zeros:1")
	files, _ := filepath.Glob(filepath.Join(st, "layers", "sha256", "*", "rootfs", "zeros"))
	if len(files) != 1 {
		t.Fatalf("unpacked: %v", files)
	}
	var fs unix.Stat_t
	if err := unix.Stat(files[0], &fs); err != nil || fs.Size != size || fs.Blocks != 0 {
		t.Fatalf("%d bytes of zeros unpacked: size %d, %d blocks (%v)", size, fs.Size, fs.Blocks, err)
	}
}
