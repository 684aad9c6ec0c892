package sandbox

import (
	"errors"
	"os"
	"testing"
)

// events records what a Runtime reports.
type events []string

func (e *events) Event(id, action string, attrs map[string]string) {
	*e = append(*e, id+" "+action+" tenant="+attrs["tenant"]+" owner="+attrs["owner"])
}

// writeOwned writes the state of a stopped container id owned by tenant, as Create would.
func writeOwned(t *testing.T, r *Runtime, id, tenant string) {
	t.Helper()
	dir := r.containerDir(id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	st := newStateFile(id, "/bundle", tenant, nil)
	st.Status = "stopped"
	if err := writeState(dir, st); err != nil {
		t.Fatal(err)
	}
}

func tenantRuntime(t *testing.T, root, tenant string, ev *events) *Runtime {
	t.Helper()
	opts := Options{Root: root, Tenant: tenant}
	if ev != nil {
		opts.Events = ev
	}
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestOwnership: a container of another tenant is answered exactly as a missing one — by Load,
// and by every operation of a handle taken before the owner's state was written — the refusal is
// reported as an event, and List shows only the Runtime's tenant's containers.
func TestOwnership(t *testing.T) {
	root := t.TempDir()
	var evA, evB events
	a := tenantRuntime(t, root, "a", &evA)
	b := tenantRuntime(t, root, "b", &evB)
	writeOwned(t, a, "c1", "a")
	writeOwned(t, a, "c2", "b")

	_, missing := tenantRuntime(t, t.TempDir(), "b", nil).Load("c1")
	_, foreign := b.Load("c1")
	if !errors.Is(foreign, ErrNotExist) || foreign.Error() != missing.Error() {
		t.Fatalf("b.Load(a's c1) = %v; a missing container gives %v", foreign, missing)
	}
	if len(evB) != 1 || evB[0] != "c1 "+EventAccessRefused+" tenant=b owner=a" {
		t.Errorf("b's events %q", evB)
	}
	if _, err := a.Load("c1"); err != nil {
		t.Errorf("a.Load(c1): %v", err)
	}
	for r, want := range map[*Runtime]string{a: "c1", b: "c2"} {
		sts, err := r.List()
		if err != nil || len(sts) != 1 || sts[0].ID != want {
			t.Errorf("%s lists %+v (%v), want only %s", r.opts.Tenant, sts, err, want)
		}
	}
	if len(evA) != 0 {
		t.Errorf("listing reported %q", evA)
	}

	// A handle taken while the directory had no state yet (a create in progress) is checked
	// again by each operation.
	if err := os.Mkdir(a.containerDir("c3"), 0o700); err != nil {
		t.Fatal(err)
	}
	h, err := b.Load("c3")
	if err != nil {
		t.Fatalf("b.Load of a state-less directory: %v", err)
	}
	st := newStateFile("c3", "/bundle", "a", nil)
	if err := writeState(a.containerDir("c3"), st); err != nil {
		t.Fatal(err)
	}
	_, missing = tenantRuntime(t, t.TempDir(), "b", nil).Load("c3")
	for name, op := range map[string]func() error{
		"State":  func() error { _, err := h.State(); return err },
		"Delete": func() error { return h.Delete(true) },
		"Pause":  h.Pause,
		"Signal": func() error { return h.Signal(9, true) },
	} {
		if err := op(); !errors.Is(err, ErrNotExist) || err.Error() != missing.Error() {
			t.Errorf("%s of a's c3 through b's handle: %v, want %v", name, err, missing)
		}
	}
	if _, err := os.Stat(a.containerDir("c3")); err != nil {
		t.Errorf("a's c3 is gone after b's Delete: %v", err)
	}
}

// TestOwnershipLegacyState: a state that names no tenant belongs to the default tenant.
func TestOwnershipLegacyState(t *testing.T) {
	root := t.TempDir()
	def := tenantRuntime(t, root, "", nil)
	writeOwned(t, def, "old", "")
	if _, err := def.Load("old"); err != nil {
		t.Errorf("default tenant: %v", err)
	}
	if _, err := tenantRuntime(t, root, "x", nil).Load("old"); !errors.Is(err, ErrNotExist) {
		t.Errorf("tenant x found the default tenant's container: %v", err)
	}
}
