package integration

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/sandbox"
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

// TestConcurrentCreates: containers of two tenants created, then run and deleted, concurrently
// all succeed, each tenant's containers share one range, the tenants' ranges differ, and nothing
// is left (the allocator, state and cgroup code under contention).
func TestConcurrentCreates(t *testing.T) {
	e := testenv.NewEnv(t, "tenant-x")
	rts := []*sandbox.Runtime{e.RT, e.Runtime("tenant-y")}
	const n = 6
	type job struct {
		id, bundle string
		spec       *specs.Spec
		out        *os.File
	}
	jobs := make([]job, n)
	for i := range jobs {
		spec := testenv.Spec(probe("ids"))
		jobs[i] = job{id: e.Leaks.Track(testenv.UniqueID(t)), spec: spec, bundle: testenv.Bundle(t, spec), out: e.OutFile("out")}
		e.Leaks.Dir(jobs[i].bundle)
	}
	// Every container is created before any starts, so each tenant holds its range throughout
	// (a range freed in between may legitimately go to the other tenant).
	errs := make([]error, n)
	var created, done sync.WaitGroup
	release := make(chan struct{})
	created.Add(n)
	done.Add(n)
	for i := range jobs {
		go func() {
			defer done.Done()
			j := jobs[i]
			c, err := rts[i%2].Create(j.id, j.bundle, j.spec, sandbox.IO{Stdout: j.out})
			created.Done()
			<-release
			if err != nil {
				errs[i] = fmt.Errorf("create: %w", err)
				return
			}
			defer func() {
				if err := testenv.DeleteWithin(c, true); err != nil && errs[i] == nil {
					errs[i] = fmt.Errorf("delete: %w", err)
				}
			}()
			if err := c.Start(); err != nil {
				errs[i] = fmt.Errorf("start: %w", err)
				return
			}
			if code, err := c.Wait(); err != nil || code != 0 {
				errs[i] = fmt.Errorf("wait: exit %d, %v", code, err)
			}
		}()
	}
	created.Wait()
	close(release)
	done.Wait()
	base := map[int]uint32{}
	for i, j := range jobs {
		j.out.Close()
		if errs[i] != nil {
			t.Errorf("container %d (%s): %v", i, j.id, errs[i])
			continue
		}
		b, err := os.ReadFile(j.out.Name())
		if err != nil {
			t.Fatal(err)
		}
		m := testenv.ParseReport(t, b).IDs.UIDMap[0].Outside
		if prev, ok := base[i%2]; ok && prev != m {
			t.Errorf("tenant %d: container %d maps root to %d, another to %d", i%2, i, m, prev)
		}
		base[i%2] = m
	}
	if len(base) == 2 && base[0] == base[1] {
		t.Errorf("two tenants share host id %d", base[0])
	}
	e.Leaks.AssertNone(t)
}
