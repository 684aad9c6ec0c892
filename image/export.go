package image

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Export writes the image ref to w as an OCI layout tar (readable by skopeo, umoci and Import).
// Every blob is verified while it is written; a tampered store makes Export fail.
func (s *Store) Export(ref string, w io.Writer) error {
	desc, err := s.Resolve(ref)
	if err != nil {
		return err
	}
	m, err := s.Manifest(desc)
	if err != nil {
		return err
	}
	r, _ := ParseRef(ref)
	desc.Annotations = map[string]string{ocispec.AnnotationRefName: r.Tag}
	if r.Tag == "" {
		desc.Annotations = nil
	}
	layout, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	index, _ := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{desc}})
	tw := tar.NewWriter(w)
	mod := time.Unix(0, 0)
	for _, f := range []struct {
		name string
		b    []byte
	}{{ocispec.ImageLayoutFile, layout}, {ocispec.ImageIndexFile, index}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.b)), ModTime: mod, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(f.b); err != nil {
			return err
		}
	}
	blobs := append([]ocispec.Descriptor{desc, m.Config}, m.Layers...)
	seen := map[digest.Digest]bool{}
	for _, b := range blobs {
		if seen[b.Digest] {
			continue
		}
		seen[b.Digest] = true
		if err := s.exportBlob(tw, b, mod); err != nil {
			return fmt.Errorf("export %s: %w", b.Digest, err)
		}
	}
	return tw.Close()
}

func (s *Store) exportBlob(tw *tar.Writer, d ocispec.Descriptor, mod time.Time) error {
	rc, err := s.OpenBlob(d.Digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := tw.WriteHeader(&tar.Header{Name: "blobs/sha256/" + d.Digest.Encoded(), Mode: 0o444, Size: d.Size, ModTime: mod, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	n, err := io.Copy(tw, rc)
	if err != nil {
		return err
	}
	if n != d.Size {
		return fmt.Errorf("%w: %d bytes, descriptor says %d", ErrSizeMismatch, n, d.Size)
	}
	return nil
}
