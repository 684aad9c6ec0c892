package image

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"bulwark.dev/bulwark/image/imagetest"
)

// A layer blob that hashed right is not read again while unchanged; any change to it since (even
// one that keeps its size and modification time), or a stamp that is not the store's own 0600
// file, means it is read against its digest again; GC removes the stamps of removed blobs.
func TestVerifyStampedBlob(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := s.Import(imagetest.WriteFile(t, t.TempDir(), "r.tar", imagetest.RootfsTar(t, map[string]string{"bin/sh": "real"})), "t:1")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Verify(desc); err != nil {
			t.Fatal(err)
		}
	}
	m, _ := s.Manifest(desc)
	stamp := filepath.Join(root, "images", "verified", m.Layers[0].Digest.Encoded())
	if st, err := os.Stat(stamp); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("stamp: %v %v", st, err)
	}

	p, _ := s.BlobPath(m.Layers[0].Digest)
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	real, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	evil := append([]byte(nil), real...)
	evil[len(evil)/2] ^= 0xff // same size
	os.Chmod(p, 0o644)
	if err := os.WriteFile(p, evil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, st.Mode().Perm())
	if err := os.Chtimes(p, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(desc); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("verify of a blob changed after its stamp: %v", err)
	}

	// A stamp naming the tampered blob's identity is used only if it is the store's own file.
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	id, err := fileIdentity(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stamp, id, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(stamp, 0o644)
	if err := s.Verify(desc); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("verify trusted a stamp open to others: %v", err)
	}

	if err := s.Remove("t:1"); err != nil {
		t.Fatal(err)
	}
	if err := s.GC(); err != nil {
		t.Fatal(err)
	}
	if ents, err := os.ReadDir(filepath.Join(root, "images", "verified")); err != nil || len(ents) != 0 {
		t.Errorf("stamps left after GC: %v (%v)", ents, err)
	}
}
