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
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/image/internal/untar"
	"bulwark.dev/bulwark/internal/atomicfile"
	"bulwark.dev/bulwark/internal/jsontext"
	"bulwark.dev/bulwark/internal/plainfile"
)

// Defaults of the limits against image bombs (UnpackOptions).
const (
	// DefaultMaxImageBytes bounds the uncompressed layers of one image together.
	DefaultMaxImageBytes = 32 << 30
	// DefaultMaxRatio bounds a layer's uncompressed size as a multiple of its blob's size. Real
	// layers compress 2-10×; a gzip of zeros compresses about 1000×, zstd far more.
	DefaultMaxRatio = 100
	// ratioFloor is the uncompressed size every layer may reach whatever its ratio: small
	// layers (a tar of a few empty directories compresses hundreds of times) cost nothing.
	ratioFloor = 64 << 20
)

// ErrLimit is wrapped by every refusal of an image for exceeding an unpack limit.
var ErrLimit = untar.ErrLimit

// UnpackOptions tunes layer unpacking; the zero value is the safe default.
type UnpackOptions struct {
	// NoChown leaves files owned by the unpacker. By default, when running as root, files keep the
	// archive's owners (container ids, which the sandbox maps with an idmapped mount).
	NoChown    bool
	KeepSetuid bool
	MaxBytes   int64 // per layer, uncompressed file content; 0 means untar.DefaultMaxBytes
	MaxEntries int
	// MaxImageBytes bounds the uncompressed layer streams of the whole image (layers already
	// unpacked for another image count too); 0 means DefaultMaxImageBytes.
	MaxImageBytes int64
	// MaxRatio bounds each layer's uncompressed stream as a multiple of its compressed blob
	// (beyond the first 64 MiB); 0 means DefaultMaxRatio.
	MaxRatio int64
}

func (o UnpackOptions) withDefaults() UnpackOptions {
	if o.MaxImageBytes == 0 {
		o.MaxImageBytes = DefaultMaxImageBytes
	}
	if o.MaxRatio == 0 {
		o.MaxRatio = DefaultMaxRatio
	}
	return o
}

// Layer is one unpacked, verified layer.
type Layer struct {
	DiffID digest.Digest `json:"diffID"`
	Digest digest.Digest `json:"digest"`
	// Dir is the layer's tree, an overlayfs lower directory.
	Dir string `json:"dir"`
	// Size is the layer's uncompressed stream (the tar) in bytes.
	Size   int64         `json:"size"`
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
	return s.unpackVerified(m, cfg, opts)
}

// unpackVerified is Unpack for the image of manifest m and configuration cfg, read and verified.
// An image whose layers are all unpacked already (a run's usual case) costs one read of each
// layer's record: a layer directory is published whole, by a rename, once its record is in it.
// Otherwise it holds gc.lock shared while it unpacks, so PruneLayers never takes a layer being
// unpacked for a leftover.
func (s *Store) unpackVerified(m *ocispec.Manifest, cfg *ocispec.Image, opts UnpackOptions) ([]Layer, error) {
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("image: %d layers but %d diff_ids", len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	opts = opts.withDefaults()
	if out := s.unpacked(cfg.RootFS.DiffIDs, opts); out != nil {
		return out, nil
	}
	var out []Layer
	err := s.flock("gc.lock", unix.LOCK_SH, func() error {
		var err error
		out, err = s.unpack(m, cfg, opts)
		return err
	})
	return out, err
}

// unpacked returns the records of the layers diffIDs if every one is unpacked and they are within
// the image size limit; nil otherwise (unpack then unpacks what is missing, or says what is wrong).
func (s *Store) unpacked(diffIDs []digest.Digest, opts UnpackOptions) []Layer {
	out := make([]Layer, 0, len(diffIDs))
	var total int64
	for _, d := range diffIDs {
		if checkDigest(d) != nil {
			return nil
		}
		rec, err := readLayerRecord(s.layerDir(d))
		if err != nil {
			return nil
		}
		if total += rec.Size; total > opts.MaxImageBytes {
			return nil
		}
		out = append(out, rec.Layer)
	}
	return out
}

func (s *Store) unpack(m *ocispec.Manifest, cfg *ocispec.Image, opts UnpackOptions) ([]Layer, error) {
	out := make([]Layer, 0, len(m.Layers))
	var total int64
	for i, l := range m.Layers {
		ul, err := s.unpackLayer(l, cfg.RootFS.DiffIDs[i], opts, opts.MaxImageBytes-total)
		if err != nil {
			return nil, fmt.Errorf("layer %d (%s): %w", i, l.Digest, err)
		}
		if total += ul.Size; total > opts.MaxImageBytes {
			// A layer unpacked earlier (for another image, or under other limits).
			return nil, fmt.Errorf("layer %d (%s): %w: the image expands to more than %d bytes (image size limit)", i, l.Digest, ErrLimit, opts.MaxImageBytes)
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
//
// budget is what the image's size limit leaves for this layer.
func (s *Store) unpackLayer(l ocispec.Descriptor, diffID digest.Digest, opts UnpackOptions, budget int64) (Layer, error) {
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
	f, err := plainfile.Open(p)
	if err != nil {
		return Layer{}, fmt.Errorf("open layer blob: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Layer{}, fmt.Errorf("stat layer blob: %w", err)
	}

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
	zr, c, closeZ, err := s.decompress(raw)
	if err != nil {
		return Layer{}, err
	}
	defer closeZ()
	var uncompressed hash.Hash = compressed
	var stream io.Reader = zr
	if c != Uncompressed {
		uncompressed = sha256.New()
		stream = io.TeeReader(zr, uncompressed)
	}
	// The limits are checked on the stream as it is decompressed, so a bomb is stopped before
	// it has cost more than the limit (in time: holes and zeros take no disk).
	bounded := &boundedReader{r: stream, max: budget, err: fmt.Errorf("%w: the image expands to more than %d bytes (image size limit)", ErrLimit, opts.MaxImageBytes)}
	if byRatio := max(opts.MaxRatio*fi.Size(), ratioFloor); byRatio < bounded.max {
		bounded.max = byRatio
		bounded.err = fmt.Errorf("%w: layer expands to more than %d× its compressed size of %d bytes (compression ratio limit)", ErrLimit, opts.MaxRatio, fi.Size())
	}
	rep, err := untar.Extract(bounded, tree, untar.Options{
		Chown: !opts.NoChown && os.Geteuid() == 0, KeepSetuid: opts.KeepSetuid,
		MaxBytes: opts.MaxBytes, MaxEntries: opts.MaxEntries, Whiteouts: untar.WhiteoutOverlay,
		DropDevSpecials: true, // import noted them (checkLayerSpecials)
	})
	if bounded.exceeded {
		return Layer{}, bounded.err
	}
	if err != nil {
		return Layer{}, fmt.Errorf("extract: %w", err)
	}
	// The digests cover the whole stream, including what follows the tar end marker.
	if _, err := io.Copy(io.Discard, bounded); err != nil {
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
	rec := layerRecord{Layer: Layer{DiffID: diffID, Digest: l.Digest, Dir: filepath.Join(final, "rootfs"), Size: bounded.n, Report: rep}, Compression: c}
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
	b, err := plainfile.ReadFile(filepath.Join(dir, "unpack.json"))
	if err != nil {
		return nil, err
	}
	var rec layerRecord
	if err := jsontext.Decode(b, &rec, readLayerRecordJSON); err != nil {
		return nil, fmt.Errorf("layer record %s: %w", dir, err)
	}
	if rec.DiffID.Encoded() != filepath.Base(dir) {
		return nil, fmt.Errorf("layer record %s names diff_id %s", dir, rec.DiffID)
	}
	rec.Dir = filepath.Join(dir, "rootfs") // the state root may have moved since
	if rec.Size == 0 && rec.Report != nil {
		rec.Size = rec.Report.Bytes // recorded before sizes were: the content is close enough
	}
	return &rec, nil
}

// boundedReader fails once more than max bytes have been read from r.
type boundedReader struct {
	r        io.Reader
	n, max   int64
	err      error
	exceeded bool
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.exceeded {
		return 0, b.err
	}
	n, err := b.r.Read(p)
	if b.n += int64(n); b.n > b.max {
		b.exceeded = true
		return n, b.err
	}
	return n, err
}

// Layers returns the unpacked layers below <root>/layers, whichever images use them.
func (s *Store) Layers() ([]Layer, error) {
	ents, err := os.ReadDir(filepath.Join(s.layers, "sha256"))
	if err != nil {
		return nil, fmt.Errorf("list layers: %w", err)
	}
	var out []Layer
	for _, e := range ents {
		rec, err := readLayerRecord(filepath.Join(s.layers, "sha256", e.Name()))
		if err != nil {
			continue // being removed, or not a layer
		}
		out = append(out, rec.Layer)
	}
	return out, nil
}
