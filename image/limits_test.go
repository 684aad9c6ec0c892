package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// zerosLayer is a tar holding one file of n zero bytes, gzip-compressed, and its diff_id.
func zerosLayer(t *testing.T, n int64) ([]byte, digest.Digest) {
	t.Helper()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	diff := digest.SHA256.Digester()
	tw := tar.NewWriter(io.MultiWriter(zw, diff.Hash()))
	if err := tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Mode: 0o644, Size: n}); err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for left := n; left > 0; left -= int64(len(chunk)) {
		tw.Write(chunk[:min(left, int64(len(chunk)))])
	}
	tw.Close()
	zw.Close()
	return gz.Bytes(), diff.Digest()
}

// TestRatioLimitNamesLayerAndLimit is the gzip-bomb regression (issue 8 §5): 1 GiB of zeros in
// a 1 MB gzip was unpacked whole (here 256 MiB in 256 KB); now it is refused by the ratio limit
// before it is read to the end, the error naming the layer and the limit, and nothing is
// published.
func TestRatioLimitNamesLayerAndLimit(t *testing.T) {
	const size = 256 << 20
	root := t.TempDir()
	s, _ := Open(root)
	bomb, bombDiff := zerosLayer(t, size)
	ok := layerTar(t, tarEnt{name: "ok", body: "x"})
	desc, err := s.Import(ociLayoutDiffIDs(t, [][]byte{ok, bomb}, []digest.Digest{digest.FromBytes(ok), bombDiff}), "bomb/ratio:1")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := s.Manifest(desc)
	_, err = s.Unpack(desc, UnpackOptions{})
	if !errors.Is(err, ErrLimit) {
		t.Fatalf("bomb of %d compressed bytes: %v", len(bomb), err)
	}
	for _, want := range []string{"layer 1 (" + m.Layers[1].Digest.String() + ")", "compression ratio limit", "100×"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(root, "layers", "sha256"))
	if len(ents) != 1 {
		t.Fatalf("%d layers published, want only the good one", len(ents))
	}
	// An operator who trusts such an image raises the limit; its zeros then take no disk.
	layers, err := s.Unpack(desc, UnpackOptions{MaxRatio: 2000})
	if err != nil {
		t.Fatal(err)
	}
	if sz, alloc := diskUse(t, filepath.Join(layers[1].Dir, "zeros")); sz != size || alloc != 0 {
		t.Fatalf("%d bytes of zeros unpacked: size %d, %d bytes allocated", size, sz, alloc)
	}
	if layers[1].Size < size {
		t.Fatalf("layer size %d", layers[1].Size)
	}
}

// TestImageSizeLimitNamesLayerAndLimit: layers that each pass alone are refused together once
// the image's expanded size passes the limit, counting a layer unpacked before.
func TestImageSizeLimitNamesLayerAndLimit(t *testing.T) {
	s, _ := Open(t.TempDir())
	a := layerTar(t, tarEnt{name: "a", body: strings.Repeat("a", 3<<20)})
	b := layerTar(t, tarEnt{name: "b", body: strings.Repeat("b", 3<<20)})
	desc, err := s.Import(ociLayout(t, a, b), "big/image:1")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := s.Manifest(desc)
	_, err = s.Unpack(desc, UnpackOptions{MaxImageBytes: 5 << 20})
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "layer 1 ("+m.Layers[1].Digest.String()+")") ||
		!strings.Contains(err.Error(), "more than 5242880 bytes (image size limit)") {
		t.Fatalf("got %v", err)
	}
	// The first layer alone fits, and is then published; unpacking again still counts it.
	descA, err := s.Import(ociLayout(t, a), "big/a:1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Unpack(descA, UnpackOptions{MaxImageBytes: 5 << 20}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Unpack(desc, UnpackOptions{MaxImageBytes: 5 << 20}); !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "layer 1 (") {
		t.Fatalf("with layer 0 already unpacked: %v", err)
	}
	if _, err := s.Unpack(desc, UnpackOptions{MaxImageBytes: 7 << 20}); err != nil {
		t.Fatalf("within the limit: %v", err)
	}
	// Every layer unpacked (what Unpack then only reads the records of): the limit still holds.
	if _, err := s.Unpack(desc, UnpackOptions{MaxImageBytes: 5 << 20}); !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "layer 1 (") {
		t.Fatalf("with every layer unpacked: %v", err)
	}
}

func diskUse(t *testing.T, p string) (size, allocated int64) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Size, st.Blocks * 512
}
