package image

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/image/imagetest"
	"bulwark.dev/bulwark/image/internal/untar"
	bzstd "bulwark.dev/bulwark/image/zstd"
)

func TestImportRootfsUnpackExportRemove(t *testing.T) {
	root := t.TempDir()
	src := t.TempDir()
	raw := imagetest.RootfsTar(t, map[string]string{"bin/hello": "hello"})
	var zbuf bytes.Buffer
	zw, _ := zstd.NewWriter(&zbuf)
	zw.Write(raw)
	zw.Close()
	zst := imagetest.WriteFile(t, src, "rootfs.tar.zst", zbuf.Bytes())
	// Without a decoder (a store opened with Open), a zstd stream is refused, never misread.
	plain, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Import(zst, "demo/app:1"); !errors.Is(err, errNoZstd) {
		t.Fatalf("zstd import without a decoder: %v", err)
	}
	s, err := OpenWith(root, Options{Zstd: bzstd.Decode})
	if err != nil {
		t.Fatal(err)
	}
	desc, err := s.Import(zst, "demo/app:1")
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Manifest(desc)
	if err != nil {
		t.Fatal(err)
	}
	if m.Layers[0].MediaType != ocispec.MediaTypeImageLayerZstd {
		t.Fatalf("layer media type %s", m.Layers[0].MediaType)
	}
	cfg, _ := s.Config(m)
	if cfg.RootFS.DiffIDs[0] != digest.FromBytes(raw) {
		t.Fatalf("diff_id %s, want %s", cfg.RootFS.DiffIDs[0], digest.FromBytes(raw))
	}
	got, err := s.Resolve("demo/app:1")
	if err != nil || got.Digest != desc.Digest {
		t.Fatalf("resolve: %v %v", got, err)
	}
	if _, err := s.Resolve("demo/app@" + desc.Digest.String()); err != nil {
		t.Fatalf("resolve by digest: %v", err)
	}
	rfs, err := s.Rootfs(desc, UnpackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(rfs.Lower[0], "bin/hello")); err != nil || string(b) != "hello" {
		t.Fatalf("unpacked content: %q %v", b, err)
	}
	if _, err := rfs.MountOptions(false); err != nil {
		t.Fatal(err)
	}

	// Export, then import the export under a new tag: same manifest digest.
	var out bytes.Buffer
	if err := s.Export("demo/app:1", &out); err != nil {
		t.Fatal(err)
	}
	desc2, err := s.Import(imagetest.WriteFile(t, src, "export.tar", out.Bytes()), "demo/copy:1")
	if err != nil || desc2.Digest != desc.Digest {
		t.Fatalf("re-import: %v %v", desc2.Digest, err)
	}
	if err := s.Remove("demo/app:1"); err != nil {
		t.Fatal(err)
	}
	if !s.HasBlob(m.Layers[0].Digest) {
		t.Fatal("blob still tagged by demo/copy was collected")
	}
	if err := s.Remove("demo/copy:1"); err != nil {
		t.Fatal(err)
	}
	removed, err := s.PruneLayers(nil)
	if err != nil || len(removed) != 1 || removed[0] != cfg.RootFS.DiffIDs[0] {
		t.Fatalf("prune layers: %v %v", removed, err)
	}
	if _, err := os.Stat(rfs.Lower[0]); !os.IsNotExist(err) {
		t.Fatalf("pruned layer still there: %v", err)
	}
	if s.HasBlob(m.Layers[0].Digest) || s.HasBlob(desc.Digest) {
		t.Fatal("unreferenced blobs survived gc")
	}
	if err := s.Remove("demo/copy:1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second remove: %v", err)
	}
}

// TestRemoveAndPruneLeaveNothing (issue 12): image rm and prune leave no image tree behind, the
// leftovers of an import and an unpack killed half-way included (they used to stay an hour:
// a killed run of a 460 MB image left its partial tree); an unpack in progress holds gc.lock
// shared, so prune waits for it rather than taking its directory.
func TestRemoveAndPruneLeaveNothing(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := s.Import(imagetest.WriteFile(t, t.TempDir(), "rootfs.tar", imagetest.RootfsTar(t, map[string]string{"bin/hello": "hello"})), "demo/app:1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Unpack(desc, UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	// What a killed import and a killed unpack leave.
	os.WriteFile(filepath.Join(root, "images", "ingest", "blob-123"), []byte("partial"), 0o600)
	os.MkdirAll(filepath.Join(root, "layers", "tmp", "abcdef-123", "rootfs", "usr"), 0o755)
	held := make(chan struct{})
	release := make(chan struct{})
	go s.flock("gc.lock", unix.LOCK_SH, func() error { close(held); <-release; return nil })
	<-held
	pruned := make(chan error, 1)
	go func() { _, err := s.PruneLayers(nil); pruned <- err }()
	select {
	case err := <-pruned:
		t.Fatalf("prune ran while an unpack held gc.lock: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if err := <-pruned; err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("demo/app:1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PruneLayers(nil); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"images/blobs/sha256", "images/ingest", "layers/sha256", "layers/tmp"} {
		if ents, err := os.ReadDir(filepath.Join(root, d)); err != nil || len(ents) != 0 {
			t.Errorf("%s holds %v (%v)", d, ents, err)
		}
	}
}

// dockerSave builds the layout of `docker save`: manifest.json, <id>.json, <id>/layer.tar.
func dockerSave(t testing.TB, layer []byte) []byte {
	cfg, _ := json.Marshal(ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(layer)}}})
	id := fmt.Sprintf("%x", sha256.Sum256(cfg))
	man, _ := json.Marshal([]dockerSaveEntry{{Config: id + ".json", RepoTags: []string{"x:1"}, Layers: []string{"abc/layer.tar"}}})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		n string
		b []byte
	}{{"abc/layer.tar", layer}, {id + ".json", cfg}, {"manifest.json", man}} {
		tw.WriteHeader(&tar.Header{Name: f.n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(f.b))})
		tw.Write(f.b)
	}
	tw.Close()
	return buf.Bytes()
}

func TestImportDockerSave(t *testing.T) {
	s, _ := Open(t.TempDir())
	layer := imagetest.RootfsTar(t, map[string]string{"bin/x": "x"})
	desc, err := s.Import(imagetest.WriteFile(t, t.TempDir(), "save.tar", dockerSave(t, layer)), "saved:1")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := s.Manifest(desc)
	if len(m.Layers) != 1 || m.Layers[0].Digest != digest.FromBytes(layer) {
		t.Fatalf("layers %+v", m.Layers)
	}
}

// TestTamperedStore: a blob changed on disk after import is caught by every reader, and no
// layer directory is published from it.
func TestTamperedStore(t *testing.T) {
	root := t.TempDir()
	s, _ := Open(root)
	desc, err := s.Import(imagetest.WriteFile(t, t.TempDir(), "r.tar", imagetest.RootfsTar(t, map[string]string{"bin/sh": "real"})), "t:1")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := s.Manifest(desc)
	p, _ := s.BlobPath(m.Layers[0].Digest)
	os.Chmod(p, 0o644)
	evil := imagetest.RootfsTar(t, map[string]string{"bin/sh": "evil"})
	if err := os.WriteFile(p, evil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Unpack(desc, UnpackOptions{}); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("unpack of tampered layer: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "layers", "sha256")); len(ents) != 0 {
		t.Fatalf("layer published from tampered blob: %v", ents)
	}
	if err := s.Export("t:1", &bytes.Buffer{}); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("export of tampered store: %v", err)
	}
}

func TestIngestRejectsMismatch(t *testing.T) {
	s, _ := Open(t.TempDir())
	want := digest.FromString("expected")
	if _, _, err := s.Ingest(bytes.NewReader([]byte("other")), want, -1); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("got %v", err)
	}
	if s.HasBlob(want) || s.HasBlob(digest.FromString("other")) {
		t.Fatal("mismatching blob was stored")
	}
	if _, err := s.Import("/dev/zero", "zero:1"); err == nil {
		t.Fatal("imported a character device")
	}
	if _, err := s.BlobPath("sha256:../../etc/passwd"); err == nil {
		t.Fatal("malformed digest accepted")
	}
}

func TestConcurrentTags(t *testing.T) {
	root := t.TempDir()
	s, _ := Open(root)
	d, _ := s.IngestBytes([]byte("{}"))
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s2, err := Open(root) // separate handles, as separate processes would have
			if err == nil {
				err = s2.Tag(fmt.Sprintf("c:%d", i), ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d, Size: 2})
			}
			if err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	imgs, _ := s.List()
	if len(imgs) != 16 {
		t.Fatalf("%d tags survived concurrent updates, want 16", len(imgs))
	}
}

func TestParseRef(t *testing.T) {
	for in, want := range map[string]string{
		"alpine": "alpine:latest", "a/b:1.0": "a/b:1.0", "127.0.0.1:5000/x/y:t": "127.0.0.1:5000/x/y:t",
		"x@sha256:" + fmt.Sprintf("%064x", 1): "x@sha256:" + fmt.Sprintf("%064x", 1),
	} {
		r, err := ParseRef(in)
		if err != nil || r.String() != want {
			t.Errorf("ParseRef(%q) = %q, %v; want %q", in, r.String(), err, want)
		}
	}
	for _, bad := range []string{"", "UPPER", "a/../b", "x:", "x@sha256:zz", "x@md5:00"} {
		if _, err := ParseRef(bad); err == nil {
			t.Errorf("ParseRef(%q) accepted", bad)
		}
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"config":{"digest":"sha256:` + fmt.Sprintf("%064x", 0) + `","size":2},"layers":[]}`))
	f.Add([]byte(`{"schemaVersion":2,"config":{"digest":"sha256:../../x"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			return
		}
		for _, d := range append(m.Layers, m.Config) {
			if checkDigest(d.Digest) != nil || d.Size < 0 {
				t.Fatalf("accepted bad descriptor %+v", d)
			}
		}
	})
}

func FuzzParseIndex(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"digest":"sha256:` + fmt.Sprintf("%064x", 0) + `","size":2}]}`))
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"digest":"sha512:00","size":-1}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		idx, err := ParseIndex(b)
		if err != nil {
			return
		}
		for _, d := range idx.Manifests {
			if checkDigest(d.Digest) != nil || d.Size < 0 {
				t.Fatalf("accepted bad descriptor %+v", d)
			}
		}
		ParseConfig(b)
	})
}

// TestDecompressionBomb: a small gzip layer that inflates past the limit is refused and nothing
// is published.
func TestDecompressionBomb(t *testing.T) {
	root := t.TempDir()
	s, _ := Open(root)
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Mode: 0o644, Size: 64 << 20})
	tw.Write(make([]byte, 64<<20))
	tw.Close()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw.Bytes())
	zw.Close()
	desc, err := s.Import(imagetest.WriteFile(t, t.TempDir(), "bomb.tar.gz", gz.Bytes()), "bomb:1")
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Unpack(desc, UnpackOptions{MaxBytes: 16 << 20})
	if !errors.Is(err, untar.ErrLimit) {
		t.Fatalf("bomb of %d compressed bytes: %v", gz.Len(), err)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "layers", "sha256")); len(ents) != 0 {
		t.Fatal("layer published from a bomb")
	}
}
