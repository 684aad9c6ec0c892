package integration

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

// TestIDRangesPerTenant: two containers of one tenant share its range; another tenant's range is
// disjoint; the kernel's uid_map of each init says the same as State.
func TestIDRangesPerTenant(t *testing.T) {
	e := testenv.NewEnv(t, "tenant-a")
	rtB := e.Runtime("tenant-b")
	a1 := e.MustCreate(nil, testenv.Spec(probe()))
	a2 := e.MustCreate(nil, testenv.Spec(probe()))
	b1 := e.MustCreate(rtB, testenv.Spec(probe()))
	sa1, sa2, sb1 := a1.MustState(), a2.MustState(), b1.MustState()

	for _, s := range []struct {
		name string
		c    *testenv.Ctr
		base uint32
		size uint32
	}{{"a1", a1, sa1.UIDBase, sa1.Size}, {"a2", a2, sa2.UIDBase, sa2.Size}, {"b1", b1, sb1.UIDBase, sb1.Size}} {
		pid := s.c.MustState().Pid
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", pid))
		if err != nil {
			t.Fatalf("%s: read uid_map of init %d: %v", s.name, pid, err)
		}
		want := fmt.Sprintf("0 %d %d", s.base, s.size)
		if got := strings.Join(strings.Fields(string(b)), " "); got != want {
			t.Errorf("%s: kernel uid_map %q, State says %q", s.name, got, want)
		}
		if s.base == 0 || s.size == 0 {
			t.Errorf("%s: identity or empty range (base %d size %d)", s.name, s.base, s.size)
		}
	}
	if sa1.UIDBase != sa2.UIDBase || sa1.GIDBase != sa2.GIDBase {
		t.Errorf("one tenant, two ranges: %d/%d vs %d/%d", sa1.UIDBase, sa1.GIDBase, sa2.UIDBase, sa2.GIDBase)
	}
	overlap := func(a, asz, b, bsz uint32) bool {
		return uint64(a) < uint64(b)+uint64(bsz) && uint64(b) < uint64(a)+uint64(asz)
	}
	if overlap(sa1.UIDBase, sa1.Size, sb1.UIDBase, sb1.Size) || overlap(sa1.GIDBase, sa1.Size, sb1.GIDBase, sb1.Size) {
		t.Errorf("tenants overlap: a uid %d+%d gid %d, b uid %d+%d gid %d", sa1.UIDBase, sa1.Size, sa1.GIDBase, sb1.UIDBase, sb1.Size, sb1.GIDBase)
	}
	if sa1.Tenant != "tenant-a" || sb1.Tenant != "tenant-b" {
		t.Errorf("State tenants %q %q", sa1.Tenant, sb1.Tenant)
	}
}
