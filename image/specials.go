package image

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"bulwark.dev/bulwark/image/internal/untar"
)

// Device nodes and fifos in an image. The sandbox mounts its own minimal /dev over the image's,
// so one under /dev is dead weight that tools like mmdebstrap and docker save leave in: it is
// dropped (from a rootfs tar at import; from a layer at unpack, the layer's digest being fixed),
// with a note. One anywhere else would be a device the workload could open: the import or pull
// is refused, rather than every run later.

// tarSpecials lists the device nodes and fifos of a tar stream (a rootfs tar or a layer,
// compressed or not): those under dev/ (to drop), and an error naming the first one anywhere
// else (refused at import, not at every run).
func (s *Store) tarSpecials(f io.Reader) ([]string, error) {
	zr, _, closeZ, err := s.decompress(f)
	if err != nil {
		return nil, err
	}
	defer closeZ()
	var devs []string
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return devs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("tar: %w", err)
		}
		if h.Typeflag != tar.TypeChar && h.Typeflag != tar.TypeBlock && h.Typeflag != tar.TypeFifo {
			continue
		}
		name, err := untar.CleanName(h.Name)
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(name, "dev/") {
			return nil, fmt.Errorf("%s: %w (outside /dev, where the sandbox's own /dev would not replace it)", name, untar.ErrDevice)
		}
		devs = append(devs, "/"+name)
	}
}

// checkLayerSpecials reads every layer of the stored image desc for device nodes and fifos:
// one outside /dev refuses the image; those under /dev are noted (unpack drops them).
func (s *Store) checkLayerSpecials(desc ocispec.Descriptor, note func(string)) error {
	m, err := s.Manifest(desc)
	if err != nil {
		return err
	}
	for i, l := range m.Layers {
		rc, err := s.OpenBlob(l.Digest)
		if err != nil {
			return err
		}
		devs, err := s.tarSpecials(rc)
		if err == nil {
			_, err = io.Copy(io.Discard, rc) // the whole blob, so its digest is checked too
		}
		rc.Close()
		if err != nil {
			return fmt.Errorf("layer %d (%s): %w", i, l.Digest, err)
		}
		if len(devs) > 0 {
			note(fmt.Sprintf("layer %d: %d device nodes and fifos under /dev are dropped at unpack (the sandbox mounts its own /dev): %s", i, len(devs), strings.Join(devs, " ")))
		}
	}
	return nil
}
