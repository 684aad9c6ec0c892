// Package image is Bulwark's content-addressed image store: an OCI image layout under
// <root>/images, verified imports from archives and registries, safe layer unpacking into
// <root>/layers, and the read-only root filesystem assembled from those layers.
//
// Nothing read from the store is trusted because of where it lies: every blob is checked against
// its digest when it is read, and a layer directory is published only after the compressed digest
// and the diff_id of the stream it came from were both verified.
package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/errdefs"
	"bulwark.dev/bulwark/internal/atomicfile"
	"bulwark.dev/bulwark/internal/plainfile"
)

// Errors a caller can match.
var (
	ErrNotFound       = errdefs.New(errdefs.ErrNotFound, "image not found")
	ErrDigestMismatch = errors.New("content does not match its digest")
	ErrSizeMismatch   = errors.New("content does not match its size")
)

// RefAnnotation names an index entry; it holds the full NAME:TAG.
const RefAnnotation = ocispec.AnnotationRefName

// Store is an OCI image layout plus unpacked layers below one state root. It is safe for
// concurrent use by several processes: index updates hold an exclusive flock on index.lock, and
// garbage collection excludes ingestion through gc.lock.
type Store struct {
	dir    string      // <root>/images
	layers string      // <root>/layers
	zstd   ZstdDecoder // nil: a zstd stream is refused
}

// Options configures a store.
type Options struct {
	// Zstd decodes zstd-compressed layers and rootfs tarballs; nil refuses them.
	Zstd ZstdDecoder
}

// Image is one tagged entry of the store.
type Image struct {
	Ref        string             `json:"ref"`
	Descriptor ocispec.Descriptor `json:"descriptor"`
}

// Open creates (if needed) and opens the store below the state root, refusing zstd streams: a
// store that reads layers takes a decoder (OpenWith).
func Open(root string) (*Store, error) { return OpenWith(root, Options{}) }

// OpenWith is Open with options.
func OpenWith(root string, o Options) (*Store, error) {
	s := &Store{dir: filepath.Join(root, "images"), layers: filepath.Join(root, "layers"), zstd: o.Zstd}
	for _, d := range []string{filepath.Join(s.dir, "blobs", "sha256"), filepath.Join(s.dir, "ingest"), filepath.Join(s.layers, "sha256"), filepath.Join(s.layers, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create store directory %s: %w", d, err)
		}
	}
	// Layer trees must be reachable (not listable) by a mapped root that mounts the overlay from
	// inside a user namespace; the trees themselves carry the image's own modes. (A chmod to the
	// mode a directory has still changes its inode: a journalled write at every process start.)
	for _, d := range []string{s.layers, filepath.Join(s.layers, "sha256")} {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm() == 0o711 {
			continue
		}
		if err := os.Chmod(d, 0o711); err != nil {
			return nil, fmt.Errorf("chmod %s: %w", d, err)
		}
	}
	// A layout made before is only looked at: both files are written whole (atomicfile), and
	// never removed.
	if exists(filepath.Join(s.dir, ocispec.ImageLayoutFile)) && exists(filepath.Join(s.dir, ocispec.ImageIndexFile)) {
		return s, nil
	}
	err := s.withIndexLock(func() error {
		if _, err := os.Stat(filepath.Join(s.dir, ocispec.ImageLayoutFile)); errors.Is(err, os.ErrNotExist) {
			b, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
			if err := atomicfile.Write(filepath.Join(s.dir, ocispec.ImageLayoutFile), b, imageFile); err != nil {
				return err
			}
		}
		if _, err := os.Stat(filepath.Join(s.dir, ocispec.ImageIndexFile)); errors.Is(err, os.ErrNotExist) {
			return s.writeIndex(&ocispec.Index{})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("initialise store %s: %w", s.dir, err)
	}
	return s, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Dir is the OCI layout directory.
func (s *Store) Dir() string { return s.dir }

// flock runs fn holding a lock of the given kind on a lock file in the layout directory.
func (s *Store) flock(name string, how int, fn func() error) error {
	f, err := plainfile.OpenFile(filepath.Join(s.dir, name), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open lock %s: %w", name, err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		return fmt.Errorf("lock %s: %w", name, err)
	}
	return fn()
}

func (s *Store) withIndexLock(fn func() error) error { return s.flock("index.lock", unix.LOCK_EX, fn) }

// readIndex reads index.json; callers that modify it hold the index lock.
func (s *Store) readIndex() (*ocispec.Index, error) {
	b, err := plainfile.ReadFile(filepath.Join(s.dir, ocispec.ImageIndexFile))
	if err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	idx, err := ParseIndex(b)
	if err != nil {
		return nil, fmt.Errorf("store index: %w", err)
	}
	return idx, nil
}

func (s *Store) writeIndex(idx *ocispec.Index) error {
	idx.SchemaVersion = 2
	idx.Versioned = specs.Versioned{SchemaVersion: 2}
	idx.MediaType = ocispec.MediaTypeImageIndex
	if idx.Manifests == nil {
		idx.Manifests = []ocispec.Descriptor{}
	}
	sort.Slice(idx.Manifests, func(i, j int) bool {
		return idx.Manifests[i].Annotations[RefAnnotation] < idx.Manifests[j].Annotations[RefAnnotation]
	})
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(s.dir, ocispec.ImageIndexFile), b, imageFile)
}

// Tag points ref at the manifest desc, replacing an earlier entry of the same ref.
func (s *Store) Tag(ref string, desc ocispec.Descriptor) error {
	r, err := ParseRef(ref)
	if err != nil {
		return err
	}
	if r.Tag == "" {
		return fmt.Errorf("tag %q: a tag is required", ref)
	}
	desc.Annotations = map[string]string{RefAnnotation: r.String()}
	desc.Platform = nil
	return s.withIndexLock(func() error {
		idx, err := s.readIndex()
		if err != nil {
			return err
		}
		kept := idx.Manifests[:0]
		for _, m := range idx.Manifests {
			if m.Annotations[RefAnnotation] != r.String() {
				kept = append(kept, m)
			}
		}
		idx.Manifests = append(kept, desc)
		return s.writeIndex(idx)
	})
}

// List returns the tagged images.
func (s *Store) List() ([]Image, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	out := make([]Image, 0, len(idx.Manifests))
	for _, m := range idx.Manifests {
		out = append(out, Image{Ref: m.Annotations[RefAnnotation], Descriptor: m})
	}
	return out, nil
}

// Resolve finds the manifest descriptor of NAME:TAG or NAME@DIGEST. A digest reference resolves
// only to a manifest present in the store (whether it is trusted is signing's business).
func (s *Store) Resolve(ref string) (ocispec.Descriptor, error) {
	r, err := ParseRef(ref)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	imgs, err := s.List()
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	for _, im := range imgs {
		if r.Digest != "" && im.Descriptor.Digest == r.Digest {
			return im.Descriptor, nil
		}
		if r.Digest == "" && im.Ref == r.String() {
			return im.Descriptor, nil
		}
	}
	return ocispec.Descriptor{}, fmt.Errorf("%w: %s", ErrNotFound, ref)
}

// Remove untags ref and garbage-collects blobs no tag reaches any more.
func (s *Store) Remove(ref string) error {
	r, err := ParseRef(ref)
	if err != nil {
		return err
	}
	found := false
	err = s.withIndexLock(func() error {
		idx, err := s.readIndex()
		if err != nil {
			return err
		}
		kept := idx.Manifests[:0]
		for _, m := range idx.Manifests {
			name := m.Annotations[RefAnnotation]
			if name == r.String() || (r.Digest != "" && m.Digest == r.Digest) {
				found = true
				continue
			}
			kept = append(kept, m)
		}
		idx.Manifests = kept
		return s.writeIndex(idx)
	})
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%w: %s", ErrNotFound, ref)
	}
	return s.GC()
}

// GC deletes blobs that no tagged manifest references, and whatever is in ingest/: ingestion
// holds gc.lock shared from its first blob write to its Tag, so with the lock held exclusively
// nothing there is in progress (a half-imported image is never collected; what an import killed
// half-way left is).
func (s *Store) GC() error {
	return s.flock("gc.lock", unix.LOCK_EX, func() error {
		live := map[digest.Digest]bool{}
		imgs, err := s.List()
		if err != nil {
			return err
		}
		for _, im := range imgs {
			live[im.Descriptor.Digest] = true
			m, err := s.Manifest(im.Descriptor)
			if err != nil {
				continue // a broken image keeps nothing alive; its blobs go
			}
			live[m.Config.Digest] = true
			for _, l := range m.Layers {
				live[l.Digest] = true
			}
		}
		if err := removeEntries(filepath.Join(s.dir, "ingest")); err != nil {
			return err
		}
		blobs := filepath.Join(s.dir, "blobs", "sha256")
		ents, err := os.ReadDir(blobs)
		if err != nil {
			return fmt.Errorf("list blobs: %w", err)
		}
		for _, e := range ents {
			if !live[digest.NewDigestFromEncoded(digest.SHA256, e.Name())] {
				if err := os.Remove(filepath.Join(blobs, e.Name())); err != nil {
					return fmt.Errorf("remove blob %s: %w", e.Name(), err)
				}
			}
		}
		return s.removeStamps(live)
	})
}

// PruneLayers removes unpacked layers that no tagged image uses, and leftovers of unpacks killed
// half-way (Unpack holds gc.lock shared, so with it held exclusively none is in progress). The caller must make sure no running container still mounts an untagged image's
// layers (the engine keeps images of running containers tagged or passes them in keep).
func (s *Store) PruneLayers(keep map[digest.Digest]bool) ([]digest.Digest, error) {
	var removed []digest.Digest
	err := s.flock("gc.lock", unix.LOCK_EX, func() error {
		live := map[digest.Digest]bool{}
		for d := range keep {
			live[d] = true
		}
		imgs, err := s.List()
		if err != nil {
			return err
		}
		for _, im := range imgs {
			m, err := s.Manifest(im.Descriptor)
			if err != nil {
				continue
			}
			cfg, err := s.Config(m)
			if err != nil {
				continue
			}
			for _, d := range cfg.RootFS.DiffIDs {
				live[d] = true
			}
		}
		dir := filepath.Join(s.layers, "sha256")
		ents, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range ents {
			d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
			if live[d] {
				continue
			}
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("remove layer %s: %w", e.Name(), err)
			}
			removed = append(removed, d)
		}
		return removeEntries(filepath.Join(s.layers, "tmp"))
	})
	return removed, err
}

// removeEntries deletes everything in dir, keeping dir.
func removeEntries(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("remove leftover %s: %w", e.Name(), err)
		}
	}
	return nil
}

// ingestion holds gc.lock shared while fn writes blobs and tags them.
func (s *Store) ingestion(fn func() error) error { return s.flock("gc.lock", unix.LOCK_SH, fn) }

// Manifest reads and verifies the image manifest desc points at.
func (s *Store) Manifest(desc ocispec.Descriptor) (*ocispec.Manifest, error) {
	b, err := s.ReadBlob(desc.Digest, maxJSON)
	if err != nil {
		return nil, err
	}
	return ParseManifest(b)
}

// Config reads and verifies the image configuration of manifest m.
func (s *Store) Config(m *ocispec.Manifest) (*ocispec.Image, error) {
	b, err := s.ReadBlob(m.Config.Digest, maxJSON)
	if err != nil {
		return nil, err
	}
	return ParseConfig(b)
}

// newConfig is the minimal configuration of a single-layer image built from a rootfs tar.
func newConfig(diffIDs []digest.Digest, arch string) ocispec.Image {
	now := time.Now().UTC()
	return ocispec.Image{
		Created:  &now,
		Platform: ocispec.Platform{Architecture: arch, OS: "linux"},
		Config:   ocispec.ImageConfig{Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, Cmd: []string{"/bin/sh"}},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
	}
}
