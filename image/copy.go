package image

import (
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Copy copies the image top names from fetch into the store, verifying every blob against its
// digest (an index resolved to the manifest for linux on this architecture), tells note about
// what unpack will drop (device nodes and fifos under /dev in a layer), and tags it tag. It is
// how a source outside this package (a registry: image/registry) brings an image in; the
// manifest's digest is that of the bytes fetched, whether it is trusted is for signing to
// decide.
func (s *Store) Copy(top ocispec.Descriptor, fetch Fetcher, tag string, note func(string)) (ocispec.Descriptor, error) {
	r, err := ParseRef(tag)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if note == nil {
		note = func(string) {}
	}
	var desc ocispec.Descriptor
	err = s.ingestion(func() error {
		var err error
		if desc, err = s.copyImage(top, fetch); err != nil {
			return err
		}
		if err := s.checkLayerSpecials(desc, note); err != nil {
			return err
		}
		return s.Tag(r.String(), desc)
	})
	return desc, err
}

// IsManifestType reports whether mt is the media type of a manifest or an index (OCI or
// Docker's), not of a blob.
func IsManifestType(mt string) bool {
	switch mt {
	case ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex, dockerManifest, dockerManifestList:
		return true
	}
	return false
}

// TransferSize is the number of blob bytes copying the manifest or index b (of mediaType) moves:
// its config and layers, those of this platform's manifest for an index, which child fetches; 0
// if it cannot tell. A progress display knows its total up front with it.
func TransferSize(b []byte, mediaType string, child func(ocispec.Descriptor) []byte) int64 {
	if isIndex(mediaType, b) {
		idx, err := ParseIndex(b)
		if err != nil {
			return 0
		}
		d, err := pickPlatform(idx)
		if err != nil {
			return 0
		}
		if b = child(d); b == nil || isIndex(d.MediaType, b) {
			return 0
		}
	}
	m, err := ParseManifest(b)
	if err != nil {
		return 0
	}
	total := m.Config.Size
	for _, l := range m.Layers {
		total += l.Size
	}
	return total
}
