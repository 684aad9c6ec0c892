package runc

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

// TestIDRangesHostWide is the regression for id ranges colliding across runtime roots: containerd
// runs one bulwark-runc --root per namespace, and an allocator kept under each --root gave tenants
// in different roots the same host ids (container root = host 1048576 in both). The allocator lives
// under the shared --state-root, so two roots on one host get disjoint ranges.
func TestIDRangesHostWide(t *testing.T) {
	stateRoot := t.TempDir()
	a, leaksA := newCLI(t)
	b, leaksB := newCLI(t)
	a.env = append(os.Environ(), "BULWARK_STATE_ROOT="+stateRoot)
	b.env = a.env
	// Range holders are recorded under the state root now: check nothing is left there either.
	shared := testenv.NewLeaks(t, stateRoot)

	// The policy knows both tenants (an unknown tenant is refused before any range is taken).
	pol := t.TempDir()
	data := `{"bulwark": {"tenants": {"alice": {"max_memory": 1073741824, "max_pids": 1024}, "bob": {"max_memory": 1073741824, "max_pids": 1024}}}}`
	if err := os.WriteFile(filepath.Join(pol, "data.json"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	bundle := testenv.Bundle(t, sleeper())
	leaksA.Dir(bundle)
	idA := shared.Track(leaksA.Track(testenv.UniqueID(t) + "-a"))
	idB := shared.Track(leaksB.Track(testenv.UniqueID(t) + "-b"))

	a.ok("--policy", pol, "--tenant", "alice", "create", "--bundle", bundle, idA)
	t.Cleanup(func() { a.run("--tenant", "alice", "delete", "--force", idA) })
	b.ok("--policy", pol, "--tenant", "bob", "create", "--bundle", bundle, idB)
	t.Cleanup(func() { b.run("--tenant", "bob", "delete", "--force", idB) })

	sa, sb := a.state("--tenant", "alice", idA), b.state("--tenant", "bob", idB)
	if sa.Tenant != "alice" || sb.Tenant != "bob" {
		t.Fatalf("tenants: %q, %q", sa.Tenant, sb.Tenant)
	}
	if sa.Size == 0 || sb.Size == 0 {
		t.Fatalf("empty ranges: alice %+v, bob %+v", sa, sb)
	}
	overlap := func(b1, s1, b2, s2 uint32) bool {
		return uint64(b1) < uint64(b2)+uint64(s2) && uint64(b2) < uint64(b1)+uint64(s1)
	}
	if overlap(sa.UIDBase, sa.Size, sb.UIDBase, sb.Size) || overlap(sa.GIDBase, sa.Size, sb.GIDBase, sb.Size) {
		t.Fatalf("alice (root %s) uid %d gid %d and bob (root %s) uid %d gid %d share host ids (size %d/%d)",
			a.root, sa.UIDBase, sa.GIDBase, b.root, sb.UIDBase, sb.GIDBase, sa.Size, sb.Size)
	}
	// The kernel sees the same: the init processes' uid_maps differ.
	mapA, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(sa.Pid), "uid_map"))
	if err != nil {
		t.Fatal(err)
	}
	mapB, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(sb.Pid), "uid_map"))
	if err != nil {
		t.Fatal(err)
	}
	if string(mapA) == string(mapB) {
		t.Fatalf("same uid_map in both roots: %q", mapA)
	}
	if _, err := os.Stat(filepath.Join(stateRoot, "idmap")); err != nil {
		t.Fatalf("allocator not under --state-root: %v", err)
	}
	for _, r := range []string{a.root, b.root} {
		if _, err := os.Stat(filepath.Join(r, "idmap")); err == nil {
			t.Fatalf("an allocator under --root %s", r)
		}
	}
	a.ok("--tenant", "alice", "delete", "--force", idA)
	b.ok("--tenant", "bob", "delete", "--force", idB)
}
