package image

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"

	"bulwark.dev/bulwark/internal/atomicfile"
	"bulwark.dev/bulwark/internal/plainfile"
)

// maxJSON bounds manifests, indexes and configs read into memory.
const maxJSON = 4 << 20

// checkDigest accepts only well-formed sha256 digests, so a digest string from an archive or a
// registry can never name a path outside blobs/sha256.
func checkDigest(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("digest %q: %w", d, err)
	}
	if d.Algorithm() != digest.SHA256 {
		return fmt.Errorf("digest %q: only sha256 is supported", d)
	}
	return nil
}

// BlobPath is where the blob with digest d lives (whether or not it exists).
func (s *Store) BlobPath(d digest.Digest) (string, error) {
	if err := checkDigest(d); err != nil {
		return "", err
	}
	return filepath.Join(s.dir, "blobs", "sha256", d.Encoded()), nil
}

// HasBlob reports whether a blob file of digest d exists (its content is checked when read).
func (s *Store) HasBlob(d digest.Digest) bool {
	p, err := s.BlobPath(d)
	if err != nil {
		return false
	}
	_, err = os.Lstat(p)
	return err == nil
}

// Ingest copies r into the store. With a non-empty want the content must hash to it, and with
// size >= 0 it must have that length; nothing is renamed into blobs/ before both are checked,
// so a crash or a lie never leaves a blob that does not match its name.
func (s *Store) Ingest(r io.Reader, want digest.Digest, size int64) (digest.Digest, int64, error) {
	if want != "" {
		if err := checkDigest(want); err != nil {
			return "", 0, err
		}
		if s.HasBlob(want) {
			n, err := io.Copy(io.Discard, r)
			if err == nil && size >= 0 && n != size {
				err = fmt.Errorf("%w: %s: got %d bytes, want %d", ErrSizeMismatch, want, n, size)
			}
			return want, n, err
		}
	}
	tmp, err := os.CreateTemp(filepath.Join(s.dir, "ingest"), "blob-")
	if err != nil {
		return "", 0, fmt.Errorf("create ingest file: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	var src io.Reader = r
	if size >= 0 {
		src = io.LimitReader(r, size+1) // one byte more reveals an overlong stream
	}
	n, err := io.Copy(io.MultiWriter(tmp, h), src)
	if err != nil {
		return "", n, fmt.Errorf("ingest %s: %w", want, err)
	}
	got := digest.NewDigest(digest.SHA256, h)
	if size >= 0 && n != size {
		return "", n, fmt.Errorf("%w: %s: got %d bytes, want %d", ErrSizeMismatch, want, n, size)
	}
	if want != "" && got != want {
		return "", n, fmt.Errorf("%w: expected %s, content hashes to %s", ErrDigestMismatch, want, got)
	}
	if err := tmp.Sync(); err != nil {
		return "", n, fmt.Errorf("sync ingest file: %w", err)
	}
	if err := tmp.Chmod(0o444); err != nil {
		return "", n, err
	}
	dst, _ := s.BlobPath(got)
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", n, fmt.Errorf("publish blob %s: %w", got, err)
	}
	return got, n, atomicfile.SyncDir(filepath.Dir(dst))
}

// IngestBytes stores b and returns its digest.
func (s *Store) IngestBytes(b []byte) (digest.Digest, error) {
	d, _, err := s.Ingest(bytes.NewReader(b), digest.FromBytes(b), int64(len(b)))
	return d, err
}

// ReadBlob reads a whole blob (at most max bytes) and verifies it against d.
func (s *Store) ReadBlob(d digest.Digest, max int64) ([]byte, error) {
	rc, err := s.OpenBlob(d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("blob %s larger than %d bytes", d, max)
	}
	return b, nil
}

// OpenBlob opens blob d for streaming; the reader returns an ErrDigestMismatch error instead of
// io.EOF if the content on disk does not hash to d (a tampered or corrupted store).
func (s *Store) OpenBlob(d digest.Digest) (io.ReadCloser, error) {
	p, err := s.BlobPath(d)
	if err != nil {
		return nil, err
	}
	f, err := plainfile.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: blob %s", ErrNotFound, d)
	}
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", d, err)
	}
	return &verifyReader{f: f, h: sha256.New(), want: d}, nil
}

type verifyReader struct {
	f    *os.File
	h    hash.Hash
	want digest.Digest
}

func (v *verifyReader) Read(p []byte) (int, error) {
	n, err := v.f.Read(p)
	v.h.Write(p[:n])
	if errors.Is(err, io.EOF) {
		if got := digest.NewDigest(digest.SHA256, v.h); got != v.want {
			return n, fmt.Errorf("%w: blob %s in the store hashes to %s", ErrDigestMismatch, v.want, got)
		}
	}
	return n, err
}

// imageFile is how the store writes its own metadata files: world-readable like the rest of
// the layout, and durable (content and name) before anything refers to them.
var imageFile = atomicfile.Options{Perm: 0o644, Sync: true, SyncDir: true}

func (v *verifyReader) Close() error { return v.f.Close() }
