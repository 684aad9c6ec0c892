package image

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"bulwark.dev/bulwark/image/internal/untar"
	"bulwark.dev/bulwark/internal/atomicfile"
)

// UnpackOptions tunes layer unpacking; the zero value is the safe default.
type UnpackOptions struct {
	// NoChown leaves files owned by the unpacker. By default, when running as root, files keep the
	// archive's owners (container ids, which the sandbox maps with an idmapped mount).
	NoChown    bool
	KeepSetuid bool
	MaxBytes   int64 // per layer, uncompressed file content; 0 means untar.DefaultMaxBytes
	MaxEntries int
}

// Layer is one unpacked, verified layer.
type Layer struct {
	DiffID digest.Digest `json:"diffID"`
	Digest digest.Digest `json:"digest"`
	// Dir is the layer's tree, an overlayfs lower directory.
	Dir    string        `json:"dir"`
	Report *untar.Report `json:"report,omitempty"`
}

// layerRecord is unpack.json, written beside a layer's tree.
type layerRecord struct {
	Layer
	Compression Compression `json:"compression"`
}

// Unpack makes sure every layer of the image desc is unpacked below <root>/layers and returns
// them bottom first.
func (s *Store) Unpack(desc ocispec.Descriptor, opts UnpackOptions) ([]Layer, error) {
	m, err := s.Manifest(desc)
	if err != nil {
		return nil, err
	}
	cfg, err := s.Config(m)
	if err != nil {
		return nil, err
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("image %s: %d layers but %d diff_ids", desc.Digest, len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	out := make([]Layer, 0, len(m.Layers))
	for i, l := range m.Layers {
		ul, err := s.unpackLayer(l, cfg.RootFS.DiffIDs[i], opts)
		if err != nil {
			return nil, fmt.Errorf("layer %d (%s): %w", i, l.Digest, err)
		}
		out = append(out, ul)
	}
	return out, nil
}

func (s *Store) layerDir(diffID digest.Digest) string {
	return filepath.Join(s.layers, "sha256", diffID.Encoded())
}

// unpackLayer extracts one layer into a temporary directory, verifies the compressed digest and
// the diff_id of exactly the bytes extracted, and only then renames it into place. A published
// layer directory is therefore always the verified content of its diff_id.
func (s *Store) unpackLayer(l ocispec.Descriptor, diffID digest.Digest, opts UnpackOptions) (Layer, error) {
	if err := checkDigest(diffID); err != nil {
		return Layer{}, err
	}
	final := s.layerDir(diffID)
	if rec, err := readLayerRecord(final); err == nil {
		return rec.Layer, nil
	}
	p, err := s.BlobPath(l.Digest)
	if err != nil {
		return Layer{}, err
	}
	f, err := os.Open(p)
	if err != nil {
		return Layer{}, fmt.Errorf("open layer blob: %w", err)
	}
	defer f.Close()

	tmp, err := os.MkdirTemp(filepath.Join(s.layers, "tmp"), diffID.Encoded()[:12]+"-")
	if err != nil {
		return Layer{}, err
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	tree := filepath.Join(tmp, "rootfs")
	if err := os.Mkdir(tree, 0o755); err != nil {
		return Layer{}, err
	}

	compressed := sha256.New()
	raw := io.TeeReader(f, compressed)
	zr, c, closeZ, err := decompress(raw)
	if err != nil {
		return Layer{}, err
	}
	defer closeZ()
	var uncompressed hash.Hash = compressed
	stream := zr
	if c != Uncompressed {
		uncompressed = sha256.New()
		stream = io.TeeReader(zr, uncompressed)
	}
	rep, err := untar.Extract(stream, tree, untar.Options{
		Chown: !opts.NoChown && os.Geteuid() == 0, KeepSetuid: opts.KeepSetuid,
		MaxBytes: opts.MaxBytes, MaxEntries: opts.MaxEntries, Whiteouts: untar.WhiteoutOverlay,
	})
	if err != nil {
		return Layer{}, fmt.Errorf("extract: %w", err)
	}
	// The digests cover the whole stream, including what follows the tar end marker.
	if _, err := io.Copy(io.Discard, stream); err != nil {
		return Layer{}, fmt.Errorf("read layer: %w", err)
	}
	if _, err := io.Copy(io.Discard, raw); err != nil {
		return Layer{}, fmt.Errorf("read layer: %w", err)
	}
	if got := digest.NewDigest(digest.SHA256, compressed); got != l.Digest {
		return Layer{}, fmt.Errorf("%w: layer blob %s hashes to %s", ErrDigestMismatch, l.Digest, got)
	}
	if got := digest.NewDigest(digest.SHA256, uncompressed); got != diffID {
		return Layer{}, fmt.Errorf("%w: diff_id %s, uncompressed layer hashes to %s", ErrDigestMismatch, diffID, got)
	}
	rec := layerRecord{Layer: Layer{DiffID: diffID, Digest: l.Digest, Dir: filepath.Join(final, "rootfs"), Report: rep}, Compression: c}
	b, err := json.Marshal(rec)
	if err != nil {
		return Layer{}, err
	}
	if err := atomicfile.Write(filepath.Join(tmp, "unpack.json"), b, imageFile); err != nil {
		return Layer{}, err
	}
	if err := os.Chmod(tmp, 0o711); err != nil {
		return Layer{}, err
	}
	if err := os.Rename(tmp, final); err != nil {
		// Another process published the same diff_id first; its copy is equally verified.
		if existing, rerr := readLayerRecord(final); rerr == nil {
			return existing.Layer, nil
		}
		return Layer{}, fmt.Errorf("publish layer: %w", err)
	}
	return rec.Layer, atomicfile.SyncDir(filepath.Dir(final))
}

func readLayerRecord(dir string) (*layerRecord, error) {
	b, err := os.ReadFile(filepath.Join(dir, "unpack.json"))
	if err != nil {
		return nil, err
	}
	var rec layerRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("layer record %s: %w", dir, err)
	}
	if rec.DiffID.Encoded() != filepath.Base(dir) {
		return nil, fmt.Errorf("layer record %s names diff_id %s", dir, rec.DiffID)
	}
	rec.Dir = filepath.Join(dir, "rootfs") // the state root may have moved since
	return &rec, nil
}
