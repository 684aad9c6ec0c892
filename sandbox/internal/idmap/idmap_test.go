package idmap

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

const helperEnv = "BULWARK_IDMAP_HELPER"

// TestMain lets the test binary act as a separate allocator process for the cross-process test.
func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "" {
		os.Exit(m.Run())
	}
	// Args: dir, process index, rounds. Each round acquires a private tenant and the shared
	// tenant, prints both, and releases the private one every other round.
	a, err := open(os.Args[1], "/nonexistent", "/nonexistent")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	rounds, _ := strconv.Atoi(os.Args[3])
	for r := 0; r < rounds; r++ {
		tenant := fmt.Sprintf("p%s-t%d", os.Args[2], r)
		for _, t := range []string{tenant, "shared"} {
			rg, err := a.Acquire(t, "c-"+os.Args[2])
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
			fmt.Printf("%s %d\n", rg.Tenant, rg.UIDBase)
		}
		if r%2 == 0 {
			if err := a.Release(tenant, "c-"+os.Args[2]); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
		}
	}
	os.Exit(0)
}

func openT(t *testing.T, dir string) *Allocator {
	t.Helper()
	a, err := open(dir, filepath.Join(dir, "..", "subuid"), filepath.Join(dir, "..", "subgid"))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func acquire(t *testing.T, a *Allocator, tenant, id string) Range {
	t.Helper()
	r, err := a.Acquire(tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestAcquireReleaseReuse(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "idmap")
	a := openT(t, dir)
	ra := acquire(t, a, "alice", "c1")
	if ra != (Range{"alice", firstBase, firstBase, RangeSize}) {
		t.Fatalf("first range = %+v", ra)
	}
	if again := acquire(t, a, "alice", "c2"); again != ra {
		t.Fatalf("second container of the same tenant got %+v, want %+v", again, ra)
	}
	rb := acquire(t, a, "bob", "c3")
	if rb.UIDBase != firstBase+RangeSize {
		t.Fatalf("bob = %+v", rb)
	}
	// alice still has c2: her range must not be freed or handed out.
	if err := a.Release("alice", "c1"); err != nil {
		t.Fatal(err)
	}
	if rc := acquire(t, a, "carol", "c4"); rc.UIDBase != firstBase+2*RangeSize {
		t.Fatalf("carol got %+v while alice's range is still held", rc)
	}
	if err := a.Release("alice", "c2"); err != nil {
		t.Fatal(err)
	}
	if err := a.Release("alice", "c2"); err != nil {
		t.Fatalf("second release: %v", err)
	}
	// Freed only now, so the next new tenant reuses it.
	if rd := acquire(t, a, "dave", "c5"); rd.UIDBase != firstBase {
		t.Fatalf("dave got %+v, want the released base %d", rd, firstBase)
	}
	// Persisted: a fresh Open sees the same allocations.
	list, err := openT(t, dir).List()
	if err != nil {
		t.Fatal(err)
	}
	want := []Range{
		{"dave", firstBase, firstBase, RangeSize},
		{"bob", firstBase + RangeSize, firstBase + RangeSize, RangeSize},
		{"carol", firstBase + 2*RangeSize, firstBase + 2*RangeSize, RangeSize},
	}
	if fmt.Sprint(list) != fmt.Sprint(want) {
		t.Errorf("List() = %+v, want %+v", list, want)
	}
	if _, err := a.Acquire("", "x"); err == nil {
		t.Error("empty tenant accepted")
	}
}

func TestSkipsSubordinateIDs(t *testing.T) {
	root := t.TempDir()
	// subuid covers the first slot, subgid (unaligned) reaches into the second.
	os.WriteFile(filepath.Join(root, "subuid"), []byte("# host users\nroot:1048576:65536\n"), 0o644)
	os.WriteFile(filepath.Join(root, "subgid"), []byte("root:1048576:65536\nalice:1114200:10\n"), 0o644)
	a := openT(t, filepath.Join(root, "idmap"))
	if r := acquire(t, a, "t", "c"); r.UIDBase != firstBase+2*RangeSize || r.GIDBase != r.UIDBase {
		t.Fatalf("range = %+v, want base %d (past /etc/subuid and /etc/subgid)", r, firstBase+2*RangeSize)
	}
	os.WriteFile(filepath.Join(root, "subuid"), []byte("garbage\n"), 0o644)
	if _, err := a.Acquire("u", "c"); err == nil {
		t.Error("malformed subuid accepted")
	}
}

func TestCorruptStateIsAnError(t *testing.T) {
	for name, content := range map[string]string{
		"not json":      "{{{",
		"unknown key":   `{"version":1,"ranges":[],"extra":1}`,
		"bad version":   `{"version":7,"ranges":[]}`,
		"overlap":       `{"version":1,"ranges":[{"tenant":"a","uidBase":1048576,"gidBase":1048576,"size":65536,"holders":["x"]},{"tenant":"b","uidBase":1048577,"gidBase":2000000,"size":65536,"holders":["y"]}]}`,
		"no holders":    `{"version":1,"ranges":[{"tenant":"a","uidBase":1048576,"gidBase":1048576,"size":65536,"holders":[]}]}`,
		"below base":    `{"version":1,"ranges":[{"tenant":"a","uidBase":0,"gidBase":0,"size":65536,"holders":["x"]}]}`,
		"dup tenant":    `{"version":1,"ranges":[{"tenant":"a","uidBase":1048576,"gidBase":1048576,"size":65536,"holders":["x"]},{"tenant":"a","uidBase":2097152,"gidBase":2097152,"size":65536,"holders":["y"]}]}`,
		"wraps id 2^32": `{"version":1,"ranges":[{"tenant":"a","uidBase":4294901760,"gidBase":1048576,"size":65536,"holders":["x"]}]}`,
		"v2 overlap":    `{"version":2,"ranges":[{"tenant":"a","uidBase":1048576,"gidBase":1048576,"size":65536},{"tenant":"b","uidBase":1048577,"gidBase":2000000,"size":65536}]}`,
		"v2 holders":    `{"version":2,"ranges":[{"tenant":"a","uidBase":1048576,"gidBase":1048576,"size":65536,"holders":["x"]}]}`,
		"v1 bad holder": `{"version":1,"ranges":[{"tenant":"a","uidBase":1048576,"gidBase":1048576,"size":65536,"holders":["../x"]}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, stateFile)
			os.WriteFile(p, []byte(content), 0o600)
			a, err := open(dir, "/nonexistent", "/nonexistent")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.Acquire("a", "c"); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Acquire: %v, want ErrCorrupt", err)
			}
			if err := a.Release("a", "x"); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Release: %v, want ErrCorrupt", err)
			}
			if _, err := a.List(); !errors.Is(err, ErrCorrupt) {
				t.Errorf("List: %v, want ErrCorrupt", err)
			}
			if got, _ := os.ReadFile(p); string(got) != content {
				t.Error("corrupt state file was rewritten")
			}
		})
	}
}

// TestHolderChangesWriteNoState: once a tenant has its range, creating and deleting its
// containers neither rewrites nor flushes the state file (issue 14: the flushes were most of a
// container's cgroups+idrange and teardown steps); the range stays the tenant's until another
// tenant needs those ids.
func TestHolderChangesWriteNoState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "idmap")
	a := openT(t, dir)
	ra := acquire(t, a, "alice", "c1")
	before, err := os.Stat(filepath.Join(dir, stateFile))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := a.Release("alice", "c1"); err != nil {
			t.Fatal(err)
		}
		if list, err := a.List(); err != nil || len(list) != 0 {
			t.Fatalf("List() after the last release = %+v, %v", list, err)
		}
		if again := acquire(t, a, "alice", "c1"); again != ra {
			t.Fatalf("alice's range moved: %+v, was %+v", again, ra)
		}
	}
	after, err := os.Stat(filepath.Join(dir, stateFile))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
		t.Error("the state file was rewritten for a holder change")
	}
	// Released, alice's range is bob's for the taking; alice then gets another.
	if err := a.Release("alice", "c1"); err != nil {
		t.Fatal(err)
	}
	if rb := acquire(t, a, "bob", "c2"); rb.UIDBase != ra.UIDBase {
		t.Fatalf("bob got %+v, want alice's released base %d", rb, ra.UIDBase)
	}
	if ra2 := acquire(t, a, "alice", "c3"); ra2.UIDBase == ra.UIDBase {
		t.Fatalf("alice got bob's range %+v", ra2)
	}
	list, err := a.List()
	if err != nil {
		t.Fatal(err)
	}
	checkDisjoint(t, list)
	if len(list) != 2 {
		t.Errorf("List() = %+v, want bob's and alice's", list)
	}
	if _, err := a.Acquire("alice", "../c"); err == nil {
		t.Error("a container id naming another directory was accepted")
	}
}

// TestHoldersAllocateNoInode: once a tenant has its range, a container's holder is a hard link
// of the allocator's one holder file and the tenant's directory stays after its last holder goes,
// so a create and a delete make and free no inode on the state root's disk (≈ 0.7 ms each on
// ext4, issue 14). A binding taken over by another tenant takes its empty directory with it.
func TestHoldersAllocateNoInode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "idmap")
	a := openT(t, dir)
	ra := acquire(t, a, "alice", "c1")
	tenantDir := a.holders("alice")
	before, err := os.Stat(tenantDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"c2", "c3"} {
		acquire(t, a, "alice", id)
	}
	holder, err := os.Stat(filepath.Join(dir, holderFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"c1", "c2", "c3"} {
		fi, err := os.Stat(filepath.Join(tenantDir, id))
		if err != nil || !os.SameFile(fi, holder) {
			t.Errorf("holder %s is not a link of the holder file: %v", id, err)
		}
	}
	for _, id := range []string{"c1", "c2", "c3"} {
		if err := a.Release("alice", id); err != nil {
			t.Fatal(err)
		}
	}
	after, err := os.Stat(tenantDir)
	if err != nil || !os.SameFile(before, after) {
		t.Fatalf("alice's holder directory did not stay: %v", err)
	}
	if list, err := a.List(); err != nil || len(list) != 0 {
		t.Fatalf("List() after the last release = %+v, %v", list, err)
	}
	if rb := acquire(t, a, "bob", "c4"); rb.UIDBase != ra.UIDBase {
		t.Fatalf("bob got %+v, want alice's released base %d", rb, ra.UIDBase)
	}
	if _, err := os.Stat(tenantDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("alice's holder directory outlived her binding: %v", err)
	}
}

// TestStaleTempRemovedOnSave: a state file's temporary copy left by a writer killed before its
// rename is never read, and is removed by the next write of the state (a tenant bound), not
// looked for under every container's create and delete.
func TestStaleTempRemovedOnSave(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "idmap")
	a := openT(t, dir)
	acquire(t, a, "alice", "c1")
	stale := filepath.Join(dir, ".ranges-123.json")
	if err := os.WriteFile(stale, []byte("{{{"), 0o600); err != nil {
		t.Fatal(err)
	}
	acquire(t, a, "alice", "c2")
	if err := a.Release("alice", "c1"); err != nil {
		t.Fatal(err)
	}
	acquire(t, a, "bob", "c3")
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temporary file after a save: %v", err)
	}
}

// TestHolderWithoutLink: where the holder file cannot be linked (here it is a directory; EMLINK
// at the filesystem's link limit is the real case) a holder is a file of its own, and holds the
// range as well.
func TestHolderWithoutLink(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "idmap")
	a := openT(t, dir)
	if err := os.MkdirAll(filepath.Join(dir, holderFile), 0o700); err != nil {
		t.Fatal(err)
	}
	ra := acquire(t, a, "alice", "c1")
	if fi, err := os.Lstat(filepath.Join(a.holders("alice"), "c1")); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("holder c1: %v", err)
	}
	if rb := acquire(t, a, "bob", "c2"); rb.UIDBase == ra.UIDBase {
		t.Fatalf("bob got alice's held range %+v", rb)
	}
	if err := a.Release("alice", "c1"); err != nil {
		t.Fatal(err)
	}
	if rc := acquire(t, a, "carol", "c3"); rc.UIDBase != ra.UIDBase {
		t.Fatalf("carol got %+v, want alice's released base %d", rc, ra.UIDBase)
	}
}

// TestConvertsVersion1: a state written by the previous version (holders listed in the file)
// keeps every holder, so no range held there can go to another tenant.
func TestConvertsVersion1(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "idmap")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	v1 := `{"version":1,"ranges":[{"tenant":"alice","uidBase":1048576,"gidBase":1048576,"size":65536,"holders":["c1","c2"]}]}`
	if err := os.WriteFile(filepath.Join(dir, stateFile), []byte(v1), 0o600); err != nil {
		t.Fatal(err)
	}
	a := openT(t, dir)
	alice := Range{"alice", firstBase, firstBase, RangeSize}
	if list, err := a.List(); err != nil || fmt.Sprint(list) != fmt.Sprint([]Range{alice}) {
		t.Fatalf("List() = %+v, %v", list, err)
	}
	if err := a.Release("alice", "c1"); err != nil {
		t.Fatal(err)
	}
	if rb := acquire(t, a, "bob", "c3"); rb.UIDBase == firstBase {
		t.Fatalf("bob got alice's range while c2 holds it: %+v", rb)
	}
	if err := a.Release("alice", "c2"); err != nil {
		t.Fatal(err)
	}
	if rc := acquire(t, a, "carol", "c4"); rc.UIDBase != firstBase {
		t.Fatalf("carol got %+v, want alice's released base", rc)
	}
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "holders") || !strings.Contains(string(data), `"version": 2`) {
		t.Errorf("state not converted:\n%s", data)
	}
}

// checkDisjoint fails if two ranges share a uid or gid.
func checkDisjoint(t *testing.T, rs []Range) {
	t.Helper()
	for i, a := range rs {
		for _, b := range rs[:i] {
			if span(a.UIDBase, a.Size).overlaps(span(b.UIDBase, b.Size)) || span(a.GIDBase, a.Size).overlaps(span(b.GIDBase, b.Size)) {
				t.Errorf("ranges overlap: %+v and %+v", a, b)
			}
		}
	}
}

func TestConcurrentGoroutines(t *testing.T) {
	a := openT(t, filepath.Join(t.TempDir(), "idmap"))
	const workers, tenants = 16, 6
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				tenant := fmt.Sprintf("t%d", (w+i)%tenants)
				id := fmt.Sprintf("w%d-%d", w, i)
				r, err := a.Acquire(tenant, id)
				if err != nil {
					t.Error(err)
					return
				}
				// While held, the tenant's range is in the list, unchanged, and disjoint from all.
				list, err := a.List()
				if err != nil {
					t.Error(err)
					return
				}
				if !slices.Contains(list, r) {
					t.Errorf("held range %+v missing from %+v", r, list)
				}
				checkDisjoint(t, list)
				if i%2 == 0 {
					if err := a.Release(tenant, id); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	list, err := a.List()
	if err != nil {
		t.Fatal(err)
	}
	checkDisjoint(t, list)
	if len(list) != tenants {
		t.Errorf("%d ranges for %d tenants that still have holders: %+v", len(list), tenants, list)
	}
	// Every holder left is an odd round; releasing them all frees everything.
	for w := 0; w < workers; w++ {
		for i := 1; i < 10; i += 2 {
			if err := a.Release(fmt.Sprintf("t%d", (w+i)%tenants), fmt.Sprintf("w%d-%d", w, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if list, err := a.List(); err != nil || len(list) != 0 {
		t.Errorf("after releasing every holder: %+v, %v", list, err)
	}
}

// TestConcurrentProcesses runs separate allocator processes on one directory: only the flock
// keeps them from handing out the same ids.
func TestConcurrentProcesses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "idmap")
	openT(t, dir)
	const procs, rounds = 4, 8
	outs := make([]string, procs)
	var wg sync.WaitGroup
	for p := 0; p < procs; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], dir, strconv.Itoa(p), strconv.Itoa(rounds))
			cmd.Env = append(os.Environ(), helperEnv+"=1")
			cmd.Stderr = os.Stderr
			out, err := cmd.Output()
			if err != nil {
				t.Errorf("allocator process %d: %v", p, err)
			}
			outs[p] = string(out)
		}()
	}
	wg.Wait()
	shared := map[string]bool{}
	for _, out := range outs {
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "shared" {
				shared[f[1]] = true
			}
		}
	}
	if len(shared) != 1 {
		t.Errorf("the shared tenant (always held) was given %d different bases: %v", len(shared), shared)
	}
	a := openT(t, dir)
	list, err := a.List()
	if err != nil {
		t.Fatal(err)
	}
	checkDisjoint(t, list)
	// Each process keeps its odd-round tenants (rounds/2 each) plus the one shared range.
	if want := procs*rounds/2 + 1; len(list) != want {
		t.Errorf("%d ranges left, want %d", len(list), want)
	}
}
