package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"bulwark.dev/bulwark/signing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/policy"
)

// quotaEngine opens an engine on a temp state root whose policy gives tenant "q" the quotas
// limits (JSON members) and tenant "other" none.
func quotaEngine(t *testing.T, limits string) *Engine {
	t.Helper()
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy")
	os.Mkdir(pol, 0o700)
	data := `{"bulwark": {"tenants": {"q": {` + limits + `}, "other": {}}}}`
	if err := os.WriteFile(filepath.Join(pol, "data.json"), []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := Open(Config{Root: filepath.Join(dir, "state"), Policies: inProcess(t), Trust: signing.Resolver{}, PolicyDir: pol, Audit: discard{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// writeRecord writes a container record of tenant as a run would (inRunRoot: a foreground --rm
// run's, in the run root).
func writeRecord(t *testing.T, e *Engine, id, tenant string, res *Resources, inRunRoot bool) {
	t.Helper()
	if _, err := e.createMeta(&Meta{ID: id, Tenant: tenant, Resources: res}, inRunRoot); err != nil {
		t.Fatal(err)
	}
}

// limitsOf is tenant's quotas as a run's decision names them (nil: none).
func limitsOf(t *testing.T, e *Engine, tenant string) *policy.QuotaLimits {
	t.Helper()
	pe, err := e.preparedPolicy(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := e.quotaLimits(context.Background(), pe, tenant)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Any() {
		return nil
	}
	return &l
}

func usage(t *testing.T, e *Engine, except string) policy.QuotaUsage {
	t.Helper()
	unlock, err := e.lockQuota("q")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	u, err := e.quotaUsage("q", except)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// deadProcess is a process that has exited.
func deadProcess(t *testing.T) *Process {
	t.Helper()
	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		t.Skip(err)
	}
	return &Process{Pid: cmd.Process.Pid, Start: 1}
}

// What a tenant holds is counted from the records and the reservations still held: stopped
// containers count, so does a foreground --rm run's (its record in the run root), other
// tenants' do not, a container with a record and a reservation counts
// once, a reservation whose process died or whose holder file is gone counts no more and is
// removed, and the container being decided is left out.
func TestQuotaUsageCountsRecordsAndHeldReservations(t *testing.T) {
	e := quotaEngine(t, `"max_containers": 100`)
	ctx := context.Background()
	writeRecord(t, e, "a", "q", &Resources{Memory: 100, Pids: 10, NanoCPUs: 500}, false)
	writeRecord(t, e, "b", "q", &Resources{Memory: 200, Pids: 20}, true)
	writeRecord(t, e, "c", "other", &Resources{Memory: 1 << 40}, false)
	reserve := func(r reservation) func() {
		t.Helper()
		release, err := e.reserveQuota(ctx, "q", limitsOf(t, e, "q"), r, false, newTrail(discard{}, Identity{}, "q", "r"))
		if err != nil {
			t.Fatal(err)
		}
		return release
	}
	reserve(reservation{ID: "b", Resources: Resources{Memory: 200, Pids: 20}, Process: self()}) // b's record counts it
	releaseD := reserve(reservation{ID: "d", Resources: Resources{Memory: 1000}, Process: self()})
	dead := deadProcess(t)
	reserve(reservation{ID: "dead", Resources: Resources{Memory: 1 << 30}, Process: dead})
	holder := filepath.Join(t.TempDir(), "record.json")
	os.WriteFile(holder, nil, 0o600)
	reserve(reservation{ID: "held", Resources: Resources{Pids: 5}, File: holder})

	want := policy.QuotaUsage{Containers: 4, Memory: 1300, Pids: 35, NanoCPUs: 500}
	if u := usage(t, e, ""); u != want {
		t.Errorf("usage %+v, want %+v", u, want)
	}
	if _, err := os.Stat(filepath.Join(e.quotaDir("q"), fmt.Sprintf("dead.p%d-1.json", dead.Pid))); err == nil {
		t.Error("a dead process's reservation was kept")
	}
	if u := usage(t, e, "a"); u.Containers != 3 || u.Memory != 1200 {
		t.Errorf("usage leaving out a: %+v", u)
	}
	releaseD()
	os.Remove(holder)
	if u := usage(t, e, ""); u.Containers != 2 || u.Memory != 300 || u.Pids != 30 {
		t.Errorf("after release and the holder's removal: %+v", u)
	}
	if ents, _ := os.ReadDir(e.quotaDir("q")); len(ents) != 2 { // images/ and b's reservation
		t.Errorf("reservations left: %v", ents)
	}
}

// Reservations are atomic: 50 at once against a quota of 10 leave exactly 10, the others
// refused with the quota's code; a tenant without quotas reserves nothing.
func TestReserveQuotaIsAtomic(t *testing.T) {
	e := quotaEngine(t, `"max_containers": 10, "max_containers_memory": 1000000`)
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, refused := 0, 0
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := reservation{ID: fmt.Sprintf("c%d", i), Resources: Resources{Memory: 1000}, Process: self()}
			_, err := e.reserveQuota(ctx, "q", limitsOf(t, e, "q"), r, false, newTrail(discard{}, Identity{}, "q", "r"))
			var de *policy.DeniedError
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.As(err, &de) && len(de.Decision.Reasons) == 1 && de.Decision.Reasons[0].Code == policy.CodeQuotaContainers:
				refused++
			default:
				t.Errorf("reservation %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if ok != 10 || refused != 40 {
		t.Fatalf("%d reserved, %d refused; want 10 and 40", ok, refused)
	}
	if u := usage(t, e, ""); u.Containers != 10 || u.Memory != 10000 {
		t.Errorf("usage %+v", u)
	}
	if _, err := e.reserveQuota(ctx, "other", limitsOf(t, e, "other"), reservation{ID: "x", Process: self()}, false, newTrail(discard{}, Identity{}, "other", "r")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(e.quotaDir("other")); !os.IsNotExist(err) {
		t.Errorf("a tenant without quotas got quota state: %v", err)
	}
	st, err := e.Quota(ctx, "q")
	if err != nil || st.Usage.Containers != 10 || st.Limits.Containers == nil || *st.Limits.Containers != 10 || st.Limits.Pids != nil {
		t.Errorf("status %+v %v", st, err)
	}
}

// The memory quota counts each container's effective limit and refuses the one that would
// pass it, saying so.
func TestReserveQuotaMemory(t *testing.T) {
	e := quotaEngine(t, `"max_containers_memory": 1000`)
	ctx := context.Background()
	writeRecord(t, e, "a", "q", &Resources{Memory: 600}, false)
	tr := newTrail(discard{}, Identity{}, "q", "r")
	if _, err := e.reserveQuota(ctx, "q", limitsOf(t, e, "q"), reservation{ID: "b", Resources: Resources{Memory: 400}, Process: self()}, false, tr); err != nil {
		t.Fatal(err)
	}
	_, err := e.reserveQuota(ctx, "q", limitsOf(t, e, "q"), reservation{ID: "c", Resources: Resources{Memory: 1}, Process: self()}, false, tr)
	var de *policy.DeniedError
	if !errors.As(err, &de) || de.Decision.Reasons[0].Code != policy.CodeQuotaMemory {
		t.Fatalf("over the memory quota: %v", err)
	}
	// A dry run is decided, never recorded.
	if _, err := e.reserveQuota(ctx, "q", limitsOf(t, e, "q"), reservation{ID: "d", Process: self()}, true, tr); err != nil {
		t.Fatal(err)
	}
	if u := usage(t, e, ""); u.Containers != 2 {
		t.Errorf("a dry run was counted: %+v", u)
	}
}

func TestSpecResources(t *testing.T) {
	mem, pids, quota, period := int64(1<<20), int64(64), int64(150000), uint64(100000)
	s := &specs.Spec{Linux: &specs.Linux{Resources: &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: &mem}, Pids: &specs.LinuxPids{Limit: &pids},
		CPU: &specs.LinuxCPU{Quota: &quota, Period: &period}}}}
	if r := specResources(s); r != (Resources{Memory: 1 << 20, Pids: 64, NanoCPUs: 1_500_000_000}) {
		t.Errorf("%+v", r)
	}
	if r := specResources(&specs.Spec{}); r != (Resources{}) {
		t.Errorf("no limits: %+v", r)
	}
}

// Images charged to a tenant count while the store has them, each once, against its
// max_images_size.
func TestChargeImage(t *testing.T) {
	root := signedRoot(t)
	pol := t.TempDir()
	os.WriteFile(filepath.Join(pol, "data.json"), []byte(`{"bulwark": {"tenants": {"q": {"max_images_size": 150}}}}`), 0o600)
	e, err := Open(Config{Root: root, Policies: inProcess(t), Trust: signing.Resolver{}, PolicyDir: pol, Audit: discard{}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	who := Caller{Tenant: "q"}
	desc, err := e.Store().Resolve("busybox:1")
	if err != nil {
		t.Fatal(err)
	}
	other := digest.FromString("an image not stored")
	for _, c := range []struct {
		d    digest.Digest
		size int64
		want string
	}{
		{desc.Digest, 100, ""},
		{desc.Digest, 100, ""}, // charged once
		{other, 60, policy.CodeQuotaImages},
	} {
		err := e.ChargeImage(ctx, who, "ref", c.d, c.size)
		var de *policy.DeniedError
		if (c.want == "") != (err == nil) || c.want != "" && (!errors.As(err, &de) || de.Decision.Reasons[0].Code != c.want) {
			t.Fatalf("charge %s of %d: %v, want %q", c.d, c.size, err, c.want)
		}
	}
	// Removed from the store, an image counts no more.
	if err := e.Store().Remove("busybox:1"); err != nil {
		t.Fatal(err)
	}
	if err := e.ChargeImage(ctx, who, "ref", other, 60); err != nil {
		t.Fatal(err)
	}
	if st, err := e.Quota(ctx, "q"); err != nil || st.Usage.ImagesSize != 0 {
		t.Errorf("usage %+v %v (the charged image is not stored)", st, err)
	}
}
