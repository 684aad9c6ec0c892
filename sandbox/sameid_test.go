package sandbox

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/sandbox/internal/idmap"
	"bulwark.dev/bulwark/sandbox/internal/mac"
)

// TestRangeHolderPerRuntimeRoot: runtimes with roots of their own share the host's id allocator
// (bulwark-runc's --root per containerd namespace beside one state root, the engine's run root
// beside it), and a container id is unique only within one root. Two containers of one id and
// one tenant in two roots each hold the tenant's range: deleting one leaves it held by the other,
// so it never goes to another tenant while the other runs (their containers would share host
// ids). Before, both were the one holder holders/<tenant>/<id>, which the first delete removed.
func TestRangeHolderPerRuntimeRoot(t *testing.T) {
	needRoot(t)
	ids := t.TempDir()
	open := func(tenant string) *Runtime {
		r, err := New(Options{Root: t.TempDir(), IDMapDir: ids, Tenant: tenant})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	ra1, ra2, rb := open("t-holder-a"), open("t-holder-a"), open("t-holder-b")
	id := "holder" + strconv.Itoa(os.Getpid())
	leakCheck(t, id)
	leakCheck(t, id+"-2")
	leakCheck(t, id+"-b")
	create := func(r *Runtime, id, cgroup string) *Container {
		t.Helper()
		bundle, spec := busyboxBundle(t)
		// Cgroups of their own: one id in two roots is otherwise one cgroup (reported apart).
		spec.Linux.CgroupsPath = cgroup
		c, err := r.Create(id, bundle, spec, IO{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Delete(true) })
		return c
	}
	c1 := create(ra1, id, "bulwark/"+id)
	c2 := create(ra2, id, "bulwark/"+id+"-2")
	if err := c1.Delete(true); err != nil {
		t.Fatal(err)
	}
	alloc, err := idmap.Open(ids)
	if err != nil {
		t.Fatal(err)
	}
	held, err := alloc.List()
	if err != nil || len(held) != 1 || held[0].Tenant != "t-holder-a" {
		t.Errorf("ranges held while %s runs in the second root: %+v, %v; want t-holder-a's", id, held, err)
	}
	cb := create(rb, id+"-b", "bulwark/"+id+"-b")
	sa, err := c2.State()
	if err != nil {
		t.Fatal(err)
	}
	sb, err := cb.State()
	if err != nil {
		t.Fatal(err)
	}
	if sa.UIDBase < sb.UIDBase+sb.Size && sb.UIDBase < sa.UIDBase+sa.Size {
		t.Errorf("tenant t-holder-b got host uids %d+%d of t-holder-a's running container (%d+%d)", sb.UIDBase, sb.Size, sa.UIDBase, sa.Size)
	}
}

// TestDefaultCgroupOfAnotherRootRefused: a container's default cgroup is named by its id alone
// (bulwark/<id>), which another root's container of that id already has. Its create is refused,
// as for a cgroupsPath naming a cgroup that exists, instead of joining it: one container's limits
// would overwrite the other's, and deleting either killed both (a cross-tenant kill where the
// roots' tenants differ).
func TestDefaultCgroupOfAnotherRootRefused(t *testing.T) {
	needRoot(t)
	id := "cgsame" + strconv.Itoa(os.Getpid())
	leakCheck(t, id)
	open := func(tenant string) *Runtime {
		r, err := New(Options{Root: t.TempDir(), IDMapDir: filepath.Join(t.TempDir(), "idmap"), Tenant: tenant})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	ra, rb := open("t-cgsame-a"), open("t-cgsame-b")
	bundle, spec := busyboxBundle(t)
	ca, err := ra.Create(id, bundle, spec, IO{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ca.Delete(true) })
	bundle, spec = busyboxBundle(t)
	cb, err := rb.Create(id, bundle, spec, IO{})
	if err == nil {
		cb.Delete(true)
		t.Fatalf("a second container joined cgroup bulwark/%s of another root's", id)
	}
	if !errors.Is(err, ErrExist) {
		t.Errorf("create in the second root: %v, want ErrExist", err)
	}
	if s, err := ca.State(); err != nil || s.Status != specs.ContainerState(StatusCreated) {
		t.Errorf("the first root's container after the refusal: %+v, %v", s, err)
	}
	if _, err := os.Stat(rb.containerDir(id)); !os.IsNotExist(err) {
		t.Errorf("the refused create left its state: %v", err)
	}
}

// TestMACKeyPerRuntimeRoot: a container's SELinux label and AppArmor profile are kept host-wide
// by macKey, which tells two roots' containers of one id apart as rangeHolder does: each gets
// its own MCS level, deleting one releases only its own, and the key is a valid AppArmor profile
// name. (Create and Delete pass macKey to mac.Prepare and mac.Cleanup; this host has neither
// SELinux nor AppArmor to run them with, so the keys are driven through the label store here.)
func TestMACKeyPerRuntimeRoot(t *testing.T) {
	r1, r2 := &Runtime{opts: Options{Root: t.TempDir()}}, &Runtime{opts: Options{Root: t.TempDir()}}
	k1, k2 := r1.macKey("same"), r2.macKey("same")
	if k1 == k2 {
		t.Fatalf("one id in two roots has one MAC key %q", k1)
	}
	store, err := mac.OpenLabelStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	layers := mac.Layers{SELinux: true}
	c1, err := mac.Prepare(layers, store, k1, mac.SELinuxLabels{})
	if err != nil {
		t.Fatal(err)
	}
	c2, err := mac.Prepare(layers, store, k2, mac.SELinuxLabels{})
	if err != nil {
		t.Fatal(err)
	}
	if c1.SELinux.Level() == c2.SELinux.Level() {
		t.Errorf("two roots' containers of one id share MCS level %s", c1.SELinux.Level())
	}
	if err := mac.Cleanup(layers, store, k1); err != nil {
		t.Fatal(err)
	}
	if m, err := store.List(); err != nil || len(m) != 1 {
		t.Errorf("after the first root's delete, reservations %v (%v); want the second root's", m, err)
	}
	if _, err := mac.AppArmorProfile(mac.AppArmorProfileName(k1)); err != nil {
		t.Errorf("AppArmor profile for key %q: %v", k1, err)
	}
}
