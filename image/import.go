package image

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/image/internal/untar"
	"bulwark.dev/bulwark/internal/openat2"
)

// Fetcher opens the blob d of a source (a layout directory, an archive, a registry).
type Fetcher func(d ocispec.Descriptor) (io.ReadCloser, error)

// Import adds the image in src (an OCI layout directory or tar, a `docker save` archive, or a
// plain root filesystem tar, optionally gzip or zstd compressed) and tags it ref.
func (s *Store) Import(src, ref string) (ocispec.Descriptor, error) {
	return s.ImportNoted(src, ref, nil)
}

// ImportNoted is Import, telling note (if not nil) what the import changed: the device nodes and
// fifos under /dev a rootfs tar held (mmdebstrap, debootstrap) are dropped, as the sandbox mounts
// its own /dev; one anywhere else refuses the import.
func (s *Store) ImportNoted(src, ref string, note func(string)) (ocispec.Descriptor, error) {
	if note == nil {
		note = func(string) {}
	}
	r, err := ParseRef(ref)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if r.Digest != "" || r.Tag == "" {
		return ocispec.Descriptor{}, fmt.Errorf("import: --tag must be NAME:TAG, got %q", ref)
	}
	var desc ocispec.Descriptor
	err = s.ingestion(func() error {
		var err error
		desc, err = s.importAny(src, r, note)
		if err != nil {
			return err
		}
		return s.Tag(r.String(), desc)
	})
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("import %s: %w", src, err)
	}
	return desc, nil
}

func (s *Store) importAny(src string, r Ref, note func(string)) (ocispec.Descriptor, error) {
	st, err := os.Stat(src)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if st.IsDir() {
		desc, err := s.importDir(src, r)
		return s.checkImported(desc, err, note)
	}
	if !st.Mode().IsRegular() {
		// A fifo or device (say /dev/zero) would stream forever into the store.
		return ocispec.Descriptor{}, fmt.Errorf("%s is not a regular file or directory", src)
	}
	kind, err := sniffArchive(src)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if kind == "rootfs" {
		return s.importRootfs(src, note)
	}
	// An image archive is unpacked (safely, as files only) into a scratch directory first, because
	// its members come in no useful order.
	tmp, err := os.MkdirTemp(filepath.Join(s.dir, "ingest"), "archive-")
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer os.RemoveAll(tmp)
	f, err := os.Open(src)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer f.Close()
	if _, err := untar.Extract(f, tmp, untar.Options{Whiteouts: untar.WhiteoutPlain}); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("unpack archive: %w", err)
	}
	desc, err := s.importDir(tmp, r)
	return s.checkImported(desc, err, note)
}

// checkImported checks the layers of an image just copied into the store (unless copying it
// failed) for device nodes and fifos (checkLayerSpecials).
func (s *Store) checkImported(desc ocispec.Descriptor, err error, note func(string)) (ocispec.Descriptor, error) {
	if err != nil {
		return desc, err
	}
	return desc, s.checkLayerSpecials(desc, note)
}

// sniffArchive classifies a file: "oci" (has oci-layout), "docker" (has manifest.json), or
// "rootfs" (anything else, including compressed streams).
func sniffArchive(src string) (string, error) {
	f, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var magic [4]byte
	if _, err := io.ReadFull(f, magic[:]); err != nil {
		return "", fmt.Errorf("read %s: %w", src, err)
	}
	if sniff(magic[:]) != Uncompressed {
		return "rootfs", nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	tr := tar.NewReader(f) // skips member content by seeking
	kind := "rootfs"
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return kind, nil
		}
		if err != nil {
			return "", fmt.Errorf("%s is not a tar archive: %w", src, err)
		}
		switch strings.TrimPrefix(h.Name, "./") {
		case ocispec.ImageLayoutFile:
			return "oci", nil
		case "manifest.json":
			kind = "docker"
		}
	}
}

// openIn opens name inside dir with every symlink resolved as if dir were "/", so links in an
// unpacked archive cannot reach the host.
func openIn(dir, name string) (*os.File, error) {
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dfd)
	fd, err := openat2.Open(dfd, name, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV})
	if err != nil {
		return nil, fmt.Errorf("open %s in %s: %w", name, dir, err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

func readIn(dir, name string) ([]byte, error) {
	f, err := openIn(dir, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxJSON+1))
	if err == nil && len(b) > maxJSON {
		err = fmt.Errorf("%s larger than %d bytes", name, maxJSON)
	}
	return b, err
}

func (s *Store) importDir(dir string, r Ref) (ocispec.Descriptor, error) {
	if _, err := readIn(dir, ocispec.ImageLayoutFile); err == nil {
		return s.importLayout(dir, r)
	}
	if _, err := readIn(dir, "manifest.json"); err == nil {
		return s.importDockerSave(dir, r)
	}
	return ocispec.Descriptor{}, fmt.Errorf("%s is neither an OCI layout nor a docker save archive", dir)
}

func (s *Store) importLayout(dir string, r Ref) (ocispec.Descriptor, error) {
	b, err := readIn(dir, ocispec.ImageIndexFile)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	idx, err := ParseIndex(b)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	var desc ocispec.Descriptor
	switch {
	case len(idx.Manifests) == 1:
		desc = idx.Manifests[0]
	default:
		n := 0
		for _, m := range idx.Manifests {
			name := m.Annotations[ocispec.AnnotationRefName]
			if name == r.Tag || name == r.String() {
				desc, n = m, n+1
			}
		}
		if n != 1 {
			return ocispec.Descriptor{}, fmt.Errorf("layout holds %d images and none is annotated %q", len(idx.Manifests), r.Tag)
		}
	}
	fetch := func(d ocispec.Descriptor) (io.ReadCloser, error) {
		return openIn(dir, filepath.Join("blobs", d.Digest.Algorithm().String(), d.Digest.Encoded()))
	}
	return s.copyImage(desc, fetch)
}

// copyImage copies the image desc names from fetch into the store, verifying every blob, and
// returns the descriptor of the single-platform manifest stored. An index is resolved to the
// manifest for linux on this architecture.
func (s *Store) copyImage(desc ocispec.Descriptor, fetch Fetcher) (ocispec.Descriptor, error) {
	for depth := 0; ; depth++ {
		b, err := s.fetchJSON(desc, fetch)
		if err != nil {
			return desc, err
		}
		if !isIndex(desc.MediaType, b) {
			m, err := ParseManifest(b)
			if err != nil {
				return desc, err
			}
			if desc.MediaType == "" {
				desc.MediaType = ocispec.MediaTypeImageManifest
				if m.MediaType != "" {
					desc.MediaType = m.MediaType
				}
			}
			return desc, s.copyBlobs(m, fetch)
		}
		if depth > 0 {
			return desc, errors.New("nested image indexes are not supported")
		}
		idx, err := ParseIndex(b)
		if err != nil {
			return desc, err
		}
		if desc, err = pickPlatform(idx); err != nil {
			return desc, err
		}
	}
}

func pickPlatform(idx *ocispec.Index) (ocispec.Descriptor, error) {
	for _, m := range idx.Manifests {
		if m.Platform != nil && m.Platform.OS == "linux" && m.Platform.Architecture == runtime.GOARCH {
			return m, nil
		}
	}
	return ocispec.Descriptor{}, fmt.Errorf("%w: no linux/%s manifest in the index", ErrNotFound, runtime.GOARCH)
}

func (s *Store) fetchJSON(desc ocispec.Descriptor, fetch Fetcher) ([]byte, error) {
	if err := checkDesc("manifest", desc); err != nil {
		return nil, err
	}
	if desc.Size > maxJSON {
		return nil, fmt.Errorf("manifest %s: %d bytes, limit %d", desc.Digest, desc.Size, maxJSON)
	}
	rc, err := fetch(desc)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if _, _, err := s.Ingest(rc, desc.Digest, desc.Size); err != nil {
		return nil, err
	}
	return s.ReadBlob(desc.Digest, maxJSON)
}

func (s *Store) copyBlobs(m *ocispec.Manifest, fetch Fetcher) error {
	if _, err := s.fetchJSON(m.Config, fetch); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	for i, l := range m.Layers {
		rc, err := fetch(l)
		if err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
		_, _, err = s.Ingest(rc, l.Digest, l.Size)
		rc.Close()
		if err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
	}
	return nil
}

// dockerSaveEntry is one image of a `docker save` manifest.json.
type dockerSaveEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

func (s *Store) importDockerSave(dir string, r Ref) (ocispec.Descriptor, error) {
	b, err := readIn(dir, "manifest.json")
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	var ents []dockerSaveEntry
	if err := json.Unmarshal(b, &ents); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("parse docker save manifest.json: %w", err)
	}
	if len(ents) != 1 {
		return ocispec.Descriptor{}, fmt.Errorf("docker save archive holds %d images; import one at a time", len(ents))
	}
	e := ents[0]
	cfgBytes, err := readIn(dir, e.Config)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	cfg, err := ParseConfig(cfgBytes)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if len(cfg.RootFS.DiffIDs) != len(e.Layers) {
		return ocispec.Descriptor{}, fmt.Errorf("docker save: %d layers but %d diff_ids", len(e.Layers), len(cfg.RootFS.DiffIDs))
	}
	cfgDigest, err := s.IngestBytes(cfgBytes)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cfgDigest, Size: int64(len(cfgBytes))},
	}
	m.SchemaVersion = 2
	for i, name := range e.Layers {
		l, err := s.ingestLayerFile(dir, name)
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("layer %s: %w", name, err)
		}
		if l.MediaType == ocispec.MediaTypeImageLayer && l.Digest != cfg.RootFS.DiffIDs[i] {
			return ocispec.Descriptor{}, fmt.Errorf("layer %s: %w: config diff_id %s, layer %s", name, ErrDigestMismatch, cfg.RootFS.DiffIDs[i], l.Digest)
		}
		m.Layers = append(m.Layers, l)
	}
	return s.putManifest(&m)
}

// ingestLayerFile stores a layer file of an unpacked archive as-is.
func (s *Store) ingestLayerFile(dir, name string) (ocispec.Descriptor, error) {
	f, err := openIn(dir, name)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer f.Close()
	return s.ingestLayer(f)
}

func (s *Store) ingestLayer(f *os.File) (ocispec.Descriptor, error) {
	var magic [4]byte
	n, _ := io.ReadFull(f, magic[:])
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return ocispec.Descriptor{}, err
	}
	d, size, err := s.Ingest(f, "", -1)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return ocispec.Descriptor{MediaType: layerMediaType(sniff(magic[:n])), Digest: d, Size: size}, nil
}

func (s *Store) putManifest(m *ocispec.Manifest) (ocispec.Descriptor, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	d, err := s.IngestBytes(b)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d, Size: int64(len(b))}, nil
}

// importRootfs makes a one-layer image of a root filesystem tar.
func (s *Store) importRootfs(src string, note func(string)) (ocispec.Descriptor, error) {
	f, err := os.Open(src)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer f.Close()
	devs, err := s.tarSpecials(f)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if len(devs) > 0 {
		clean, err := s.withoutSpecials(f, devs)
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		defer os.Remove(clean.Name())
		defer clean.Close()
		note(fmt.Sprintf("dropped %d device nodes and fifos under /dev (the sandbox mounts its own /dev): %s", len(devs), strings.Join(devs, " ")))
		f = clean
	} else if _, err := f.Seek(0, io.SeekStart); err != nil {
		return ocispec.Descriptor{}, err
	}
	layer, err := s.ingestLayer(f)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	diffID, err := s.diffID(layer.Digest)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	cfgBytes, err := json.Marshal(newConfig([]digest.Digest{diffID}, runtime.GOARCH))
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	cfgDigest, err := s.IngestBytes(cfgBytes)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cfgDigest, Size: int64(len(cfgBytes))},
		Layers:    []ocispec.Descriptor{layer},
	}
	m.SchemaVersion = 2
	return s.putManifest(&m)
}

// diffID hashes the uncompressed stream of a stored layer, checking it is a readable tar.
func (s *Store) diffID(d digest.Digest) (digest.Digest, error) {
	rc, err := s.OpenBlob(d)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	zr, _, closeZ, err := s.decompress(rc)
	if err != nil {
		return "", err
	}
	defer closeZ()
	h := sha256.New()
	tr := tar.NewReader(io.TeeReader(zr, h))
	for {
		_, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("layer %s is not a tar stream: %w", d, err)
		}
	}
	if _, err := io.Copy(h, zr); err != nil {
		return "", err
	}
	return digest.NewDigest(digest.SHA256, h), nil
}

// withoutSpecials copies the rootfs tar f, decompressed, without the entries devs names, into a
// scratch file of the store's ingest directory, and returns it rewound.
func (s *Store) withoutSpecials(f *os.File, devs []string) (*os.File, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	zr, _, closeZ, err := s.decompress(f)
	if err != nil {
		return nil, err
	}
	defer closeZ()
	out, err := os.CreateTemp(filepath.Join(s.dir, "ingest"), "rootfs-")
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*os.File, error) {
		out.Close()
		os.Remove(out.Name())
		return nil, fmt.Errorf("rootfs tar without /dev nodes: %w", err)
	}
	drop := map[string]bool{}
	for _, d := range devs {
		drop[strings.TrimPrefix(d, "/")] = true
	}
	tr := tar.NewReader(zr)
	tw := tar.NewWriter(out)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fail(err)
		}
		if name, err := untar.CleanName(h.Name); err == nil && drop[name] && (h.Typeflag == tar.TypeChar || h.Typeflag == tar.TypeBlock || h.Typeflag == tar.TypeFifo) {
			continue
		}
		if h.Typeflag == tar.TypeGNUSparse {
			// The reader expands holes as zeros; the writer has no sparse form.
			h.Typeflag = tar.TypeReg
			for k := range h.PAXRecords {
				if strings.HasPrefix(k, "GNU.sparse.") {
					delete(h.PAXRecords, k)
				}
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return fail(err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return fail(err)
		}
	}
	if err := tw.Close(); err != nil {
		return fail(err)
	}
	if _, err := out.Seek(0, io.SeekStart); err != nil {
		return fail(err)
	}
	return out, nil
}
