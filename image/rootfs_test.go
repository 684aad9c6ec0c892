package image

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

type tarEnt struct {
	name, body string
	dir        bool
}

func layerTar(t *testing.T, ents ...tarEnt) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(e.body))}
		if e.dir {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	return buf.Bytes()
}

// ociLayout writes an OCI layout directory holding one image made of the given uncompressed
// layers.
func ociLayout(t *testing.T, layers ...[]byte) string {
	var diffIDs []digest.Digest
	for _, l := range layers {
		diffIDs = append(diffIDs, digest.FromBytes(l))
	}
	return ociLayoutDiffIDs(t, layers, diffIDs)
}

// ociLayoutDiffIDs is ociLayout for layers that may be compressed: diffIDs are the digests of
// their uncompressed streams.
func ociLayoutDiffIDs(t *testing.T, layers [][]byte, diffIDs []digest.Digest) string {
	dir := t.TempDir()
	blobs := filepath.Join(dir, "blobs", "sha256")
	os.MkdirAll(blobs, 0o755)
	put := func(b []byte) ocispec.Descriptor {
		d := digest.FromBytes(b)
		os.WriteFile(filepath.Join(blobs, d.Encoded()), b, 0o644)
		return ocispec.Descriptor{Digest: d, Size: int64(len(b))}
	}
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest}
	for _, l := range layers {
		d := put(l)
		d.MediaType = ocispec.MediaTypeImageLayer
		m.Layers = append(m.Layers, d)
	}
	cfg, _ := json.Marshal(newConfig(diffIDs, "amd64"))
	m.Config = put(cfg)
	m.Config.MediaType = ocispec.MediaTypeImageConfig
	mb, _ := json.Marshal(m)
	md := put(mb)
	md.MediaType = ocispec.MediaTypeImageManifest
	idx, _ := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, Manifests: []ocispec.Descriptor{md}})
	os.WriteFile(filepath.Join(dir, "index.json"), idx, 0o644)
	os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	return dir
}

// TestRootfsOverlay mounts the assembled rootfs (in a private mount namespace) and checks that
// whiteouts and opaque directories of the upper layer hide the lower layer's files, and that the
// mount is read-only.
func TestRootfsOverlay(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting overlayfs needs root")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare(1) not available")
	}
	lower := layerTar(t, tarEnt{name: "etc/", dir: true}, tarEnt{name: "etc/passwd", body: "root"},
		tarEnt{name: "etc/shadow", body: "secret"}, tarEnt{name: "var/", dir: true}, tarEnt{name: "var/old", body: "old"})
	upper := layerTar(t, tarEnt{name: "etc/.wh.shadow"}, tarEnt{name: "var/.wh..wh..opq"}, tarEnt{name: "var/new", body: "new"})
	s, _ := Open(t.TempDir())
	desc, err := s.Import(ociLayout(t, lower, upper), "demo/layers:1")
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Rootfs(desc, UnpackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Lower) != 2 {
		t.Fatalf("lowers %v", r.Lower)
	}
	opts, err := r.MountOptions(false)
	if err != nil {
		t.Fatal(err)
	}
	mnt := t.TempDir()
	script := `mount -t overlay overlay -o ro,nosuid,nodev,"$1" "$2" && cd "$2" && ls etc var | tr '\n' ' ' && (touch x 2>/dev/null && echo WRITABLE || echo readonly)`
	out, err := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", opts, mnt).CombinedOutput()
	if err != nil {
		t.Fatalf("mount overlay: %v\n%s", err, out)
	}
	got := strings.Join(strings.Fields(string(out)), " ")
	if got != "etc: passwd var: new readonly" {
		t.Fatalf("overlay view: %q", got)
	}
}

// TestRootfsOfIsRootfs: the rootfs of a manifest and configuration read and verified before is
// the image's as Rootfs and LayerRootfs describe it, whether RootfsOf unpacks the layers or
// finds them unpacked, and a layer whose directory is gone is unpacked again (verified).
func TestRootfsOfIsRootfs(t *testing.T) {
	s, _ := Open(t.TempDir())
	for _, layers := range [][][]byte{
		{layerTar(t, tarEnt{name: "a", body: "a"})},
		{layerTar(t, tarEnt{name: "a", body: "a"}), layerTar(t, tarEnt{name: "b", body: "b"})},
	} {
		desc, err := s.Import(ociLayout(t, layers...), fmt.Sprintf("demo/of:%d", len(layers)))
		if err != nil {
			t.Fatal(err)
		}
		m, err := s.Manifest(desc)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := s.Config(m)
		if err != nil {
			t.Fatal(err)
		}
		check := func(when string) {
			t.Helper()
			got, err := s.RootfsOf(m, cfg, UnpackOptions{})
			if err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			want, err := s.Rootfs(desc, UnpackOptions{})
			if err != nil {
				t.Fatal(err)
			}
			byIDs, err := s.LayerRootfs(cfg.RootFS.DiffIDs)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(got, byIDs) {
				t.Fatalf("%s: RootfsOf %+v, Rootfs %+v, LayerRootfs %+v", when, got, want, byIDs)
			}
			if len(got.Lower) != 2 {
				t.Fatalf("%s: lowers %v", when, got.Lower)
			}
		}
		if err := os.RemoveAll(s.layerDir(cfg.RootFS.DiffIDs[0])); err != nil {
			t.Fatal(err)
		}
		check("unpacking")
		check("unpacked")
		if err := os.RemoveAll(s.layerDir(cfg.RootFS.DiffIDs[len(layers)-1])); err != nil {
			t.Fatal(err)
		}
		check("a layer removed")
	}
}
