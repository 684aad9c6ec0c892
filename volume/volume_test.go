package volume

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"bulwark.dev/bulwark/errdefs"
)

func never(*Volume) (bool, error) { return false, nil }

// TestStore: names per tenant, idempotent create, refusal of bad names and of removing a
// volume in use, and prune of leftovers from a killed creation.
func TestStore(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (volumes belong to the storage range)")
	}
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	v, created, err := s.Create("acme", "db", false)
	if err != nil || !created || v.Mountpoint != filepath.Join(root, "volumes", "acme", "db", "_data") {
		t.Fatalf("create: %+v %v %v", v, created, err)
	}
	if _, created, err := s.Create("acme", "db", false); err != nil || created {
		t.Errorf("second create: created %v, %v", created, err)
	}
	for _, bad := range []string{"../x", "..", ".x", "a/b", ""} {
		if _, _, err := s.Create("acme", bad, false); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("create %q: %v", bad, err)
		}
	}
	if _, _, err := s.Create("../acme", "db", false); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("tenant ../acme: %v", err)
	}
	if _, err := s.Get("other", "db"); !errors.Is(err, ErrNotFound) {
		t.Errorf("another tenant's volume: %v", err)
	}
	if err := s.Remove("other", "db", never); !errors.Is(err, ErrNotFound) {
		t.Errorf("remove another tenant's volume: %v", err)
	}
	if err := s.Remove("acme", "db", func(*Volume) (bool, error) { return true, nil }); !errors.Is(err, ErrInUse) {
		t.Errorf("remove in use: %v", err)
	}
	// A creation killed before its rename leaves a hidden directory: no volume, pruned.
	os.MkdirAll(filepath.Join(root, "volumes", "acme", ".new-123", "_data"), 0o755)
	if vs, err := s.List("acme"); err != nil || len(vs) != 1 || vs[0].Name != "db" {
		t.Errorf("list: %v %v", vs, err)
	}
	names, err := s.Prune("acme", never)
	if err != nil || len(names) != 1 || names[0] != "db" {
		t.Errorf("prune: %v %v", names, err)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "volumes", "acme")); len(ents) != 0 {
		t.Errorf("left after prune: %v", ents)
	}
}
