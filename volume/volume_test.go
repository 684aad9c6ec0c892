package volume

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bulwark.dev/bulwark/errdefs"
)

func never(*Volume) (bool, error) { return false, nil }

// TestCheckNames: a volume is named by a tenant's name and its own, each of its syntax
// (internal/names), refused as an invalid argument otherwise.
func TestCheckNames(t *testing.T) {
	for _, c := range []struct {
		tenant, name string
		ok           bool
	}{
		{"acme", "db", true}, {"a-1", "a.b_c-1", true}, {"Acme", "db", false}, {"a_b", "db", false},
		{"acme", "..", false}, {"acme", "a/b", false}, {strings.Repeat("t", 64), "db", false},
	} {
		err := checkNames(c.tenant, c.name)
		if (err == nil) != c.ok || err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("checkNames(%q, %q) = %v, want ok %v", c.tenant, c.name, err, c.ok)
		}
	}
}

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
	v, created, err := s.Create("acme", "db", Options{})
	if err != nil || !created || v.Mountpoint != filepath.Join(root, "volumes", "acme", "db", "_data") {
		t.Fatalf("create: %+v %v %v", v, created, err)
	}
	if _, created, err := s.Create("acme", "db", Options{}); err != nil || created {
		t.Errorf("second create: created %v, %v", created, err)
	}
	for _, bad := range []string{"../x", "..", ".x", "a/b", ""} {
		if _, _, err := s.Create("acme", bad, Options{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("create %q: %v", bad, err)
		}
	}
	if _, _, err := s.Create("../acme", "db", Options{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
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

// TestFill: a volume is filled only while empty and never filled before; a fill that copied
// nothing does not count; a failed fill leaves the data directory empty and the volume unfilled.
func TestFill(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (volumes belong to the storage range)")
	}
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	v, _, err := s.Create("acme", "db", Options{})
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	write := func(copied bool, fail error) func(string) (bool, error) {
		return func(data string) (bool, error) {
			calls++
			os.WriteFile(filepath.Join(data, "f"), []byte("x"), 0o644)
			return copied, fail
		}
	}
	boom := errors.New("boom")
	if err := s.Fill(v, write(true, boom)); !errors.Is(err, boom) {
		t.Errorf("failed fill: %v", err)
	}
	if ents, _ := os.ReadDir(v.Mountpoint); len(ents) != 0 || v.Filled {
		t.Errorf("after a failed fill: %v, filled %v", ents, v.Filled)
	}
	os.WriteFile(filepath.Join(v.Mountpoint, "mine"), nil, 0o644)
	if err := s.Fill(v, write(true, nil)); err != nil || calls != 1 {
		t.Errorf("fill of a volume holding data: %v, %d calls", err, calls)
	}
	os.Remove(filepath.Join(v.Mountpoint, "mine"))
	if err := s.Fill(v, func(string) (bool, error) { calls++; return false, nil }); err != nil || v.Filled {
		t.Errorf("fill that copied nothing: %v, filled %v", err, v.Filled)
	}
	if err := s.Fill(v, write(true, nil)); err != nil || !v.Filled || calls != 3 {
		t.Errorf("fill: %v, filled %v, %d calls", err, v.Filled, calls)
	}
	os.Remove(filepath.Join(v.Mountpoint, "f"))
	if err := s.Fill(v, write(true, nil)); err != nil || calls != 3 {
		t.Errorf("refill of an emptied volume: %v, %d calls", err, calls)
	}
	if got, err := s.Get("acme", "db"); err != nil || !got.Filled {
		t.Errorf("record: %+v %v", got, err)
	}
}
