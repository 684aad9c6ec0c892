package image

import (
	"encoding/json"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"bulwark.dev/bulwark/internal/jsontext"
)

// Media types of Docker's schema 2, accepted alongside OCI's.
const (
	dockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	dockerConfig       = "application/vnd.docker.container.image.v1+json"
	dockerLayer        = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	dockerLayerForeign = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
)

// Limits on what a parsed document may describe.
const (
	maxLayers      = 256
	maxIndexImages = 4096
)

func checkDesc(what string, d ocispec.Descriptor) error {
	if err := checkDigest(d.Digest); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if d.Size < 0 {
		return fmt.Errorf("%s: negative size %d", what, d.Size)
	}
	if len(d.URLs) > 0 {
		// Foreign layers would make us fetch from arbitrary URLs; we never do.
		return fmt.Errorf("%s: descriptors with urls are not supported", what)
	}
	return nil
}

// ParseManifest decodes and validates an OCI or Docker schema 2 image manifest.
func ParseManifest(b []byte) (*ocispec.Manifest, error) {
	var m ocispec.Manifest
	if err := jsontext.Decode(b, &m, readManifest); err != nil {
		return nil, fmt.Errorf("parse manifest: %w", err)
	}
	if m.SchemaVersion != 2 {
		return nil, fmt.Errorf("manifest: schemaVersion %d, want 2", m.SchemaVersion)
	}
	switch m.MediaType {
	case "", ocispec.MediaTypeImageManifest, dockerManifest:
	default:
		return nil, fmt.Errorf("manifest: unsupported media type %q", m.MediaType)
	}
	if err := checkDesc("manifest config", m.Config); err != nil {
		return nil, err
	}
	if len(m.Layers) > maxLayers {
		return nil, fmt.Errorf("manifest: %d layers, limit %d", len(m.Layers), maxLayers)
	}
	for i, l := range m.Layers {
		if err := checkDesc(fmt.Sprintf("manifest layer %d", i), l); err != nil {
			return nil, err
		}
		switch l.MediaType {
		case ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerZstd, dockerLayer,
			ocispec.MediaTypeImageLayerNonDistributable, ocispec.MediaTypeImageLayerNonDistributableGzip, //nolint:staticcheck // still seen in the wild
			ocispec.MediaTypeImageLayerNonDistributableZstd: //nolint:staticcheck
		default:
			return nil, fmt.Errorf("manifest layer %d: unsupported media type %q", i, l.MediaType)
		}
	}
	return &m, nil
}

// ParseIndex decodes and validates an OCI image index (or Docker manifest list).
func ParseIndex(b []byte) (*ocispec.Index, error) {
	var idx ocispec.Index
	if err := jsontext.Decode(b, &idx, readIndex); err != nil {
		return nil, fmt.Errorf("parse index: %w", err)
	}
	if idx.SchemaVersion != 2 {
		return nil, fmt.Errorf("index: schemaVersion %d, want 2", idx.SchemaVersion)
	}
	switch idx.MediaType {
	case "", ocispec.MediaTypeImageIndex, dockerManifestList:
	default:
		return nil, fmt.Errorf("index: unsupported media type %q", idx.MediaType)
	}
	if len(idx.Manifests) > maxIndexImages {
		return nil, fmt.Errorf("index: %d entries, limit %d", len(idx.Manifests), maxIndexImages)
	}
	for i, d := range idx.Manifests {
		if err := checkDesc(fmt.Sprintf("index entry %d", i), d); err != nil {
			return nil, err
		}
	}
	return &idx, nil
}

// ParseConfig decodes and validates an image configuration.
func ParseConfig(b []byte) (*ocispec.Image, error) {
	var c ocispec.Image
	if err := jsontext.Decode(b, &c, readImage); err != nil {
		return nil, fmt.Errorf("parse image config: %w", err)
	}
	if c.RootFS.Type != "layers" {
		return nil, fmt.Errorf("image config: rootfs type %q, want layers", c.RootFS.Type)
	}
	for i, d := range c.RootFS.DiffIDs {
		if err := checkDigest(d); err != nil {
			return nil, fmt.Errorf("image config diff_id %d: %w", i, err)
		}
	}
	return &c, nil
}

// isIndex tells an index from a manifest by media type or, when that is absent, by shape.
func isIndex(mediaType string, b []byte) bool {
	switch mediaType {
	case ocispec.MediaTypeImageIndex, dockerManifestList:
		return true
	case ocispec.MediaTypeImageManifest, dockerManifest:
		return false
	}
	var probe struct {
		MediaType string            `json:"mediaType"`
		Manifests []json.RawMessage `json:"manifests"`
	}
	if json.Unmarshal(b, &probe) != nil {
		return false
	}
	return probe.MediaType == ocispec.MediaTypeImageIndex || probe.MediaType == dockerManifestList || probe.Manifests != nil
}
