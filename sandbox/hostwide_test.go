package sandbox

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/opencontainers/selinux/go-selinux"

	"bulwark.dev/bulwark/sandbox/internal/idmap"
	"bulwark.dev/bulwark/sandbox/internal/mac"
)

// TestHostWideAllocators: Runtimes on different state roots that name the same IDMapDir and
// SELinuxDir (bulwark-runc: <state-root>/idmap and /selinux for every --root) share one id
// allocator and one MCS label store, so tenants in different roots never share host ids or an
// SELinux level. SELinux is not enabled here: the label bookkeeping is tested, not enforcement.
func TestHostWideAllocators(t *testing.T) {
	host := t.TempDir()
	open := func(tenant string) *Runtime {
		r, err := New(Options{Root: t.TempDir(), Tenant: tenant, AllowNoMAC: true,
			IDMapDir: filepath.Join(host, "idmap"), SELinuxDir: filepath.Join(host, "selinux")})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b := open("alice"), open("bob")
	if a.opts.IDMapDir != b.opts.IDMapDir || a.opts.SELinuxDir != b.opts.SELinuxDir || a.opts.Root == b.opts.Root {
		t.Fatalf("options: %+v / %+v", a.opts, b.opts)
	}
	alloc, err := idmap.Open(a.opts.IDMapDir)
	if err != nil {
		t.Fatal(err)
	}
	ra, err := alloc.Acquire("alice", "c1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alloc.Release("alice", "c1") })
	allocB, err := idmap.Open(b.opts.IDMapDir)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := allocB.Acquire("bob", "c2")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { allocB.Release("bob", "c2") })
	if ra.UIDBase == rb.UIDBase {
		t.Fatalf("alice and bob share host id %d", ra.UIDBase)
	}

	sa, err := a.labelStore(mac.Layers{SELinux: true})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b.labelStore(mac.Layers{SELinux: true})
	if err != nil {
		t.Fatal(err)
	}
	want := mac.SELinuxLabels{Process: "system_u:system_r:container_t:s0:c7,c9"}
	if _, err := sa.Reserve("c1", want); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sa.Release("c1") })
	if _, err := sb.Reserve("c2", want); !errors.Is(err, selinux.ErrMCSAlreadyExists) {
		t.Fatalf("bob got alice's level s0:c7,c9 from another root: %v", err)
	}
}

// TestDefaultAllocatorDirs: without the options, both live under Root (the engine's layout,
// whose Root is the host's one state root).
func TestDefaultAllocatorDirs(t *testing.T) {
	root := t.TempDir()
	r, err := New(Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if r.opts.IDMapDir != filepath.Join(root, "idmap") || r.opts.SELinuxDir != filepath.Join(root, "selinux") {
		t.Fatalf("defaults: %s, %s", r.opts.IDMapDir, r.opts.SELinuxDir)
	}
}
