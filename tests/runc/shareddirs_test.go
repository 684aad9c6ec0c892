package runc

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

// TestSharedMaskAndCgroupDirs (issue 14): the empty directory over masked directories and the
// skeleton the cgroup views are mounted on are the runtime's, one of each shared by its
// containers (the same device and inode in two containers alive together), not a tmpfs made by
// each; inside, each is container root's as before (idmapped), of the same mode, read-only, and
// the masked one empty. They are shared only on a state root on a tmpfs (as /run, and as the
// memory benchmark's): /dev/shm here (TestCoversOnDiskRootAreTmpfs for a state root on disk).
func TestSharedMaskAndCgroupDirs(t *testing.T) {
	c, leaks := newCLIAt(t, testenv.TmpfsDir(t))
	bundle := testenv.Bundle(t, sleeper())
	leaks.Dir(bundle)
	type seen struct {
		dev, ino uint64
	}
	first := map[string]seen{}
	for i := range 2 {
		id := leaks.Track(testenv.UniqueID(t) + fmt.Sprint(i))
		c.ok("create", "--bundle", bundle, id)
		t.Cleanup(func() { c.run("delete", "--force", id) })
		root := fmt.Sprintf("/proc/%d/root", c.state(id).Pid)
		for _, d := range []struct {
			path string
			mode uint32
		}{{"/sys/firmware", 0o555}, {"/sys/fs/cgroup", 0o755}} {
			p := filepath.Join(root, d.path)
			var st unix.Stat_t
			if err := unix.Stat(p, &st); err != nil {
				t.Fatal(err)
			}
			if st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Mode&0o7777 != d.mode {
				t.Errorf("%s in %s: mode %#o, want a directory of mode %#o", d.path, id, st.Mode, d.mode)
			}
			var fs unix.Statfs_t
			if err := unix.Statfs(p, &fs); err != nil || fs.Flags&unix.ST_RDONLY == 0 {
				t.Errorf("%s in %s is not on a read-only mount (%v)", d.path, id, err)
			}
			if err := os.WriteFile(filepath.Join(p, "x"), nil, 0o600); err == nil {
				t.Errorf("%s in %s: written", d.path, id)
			}
			if i == 0 {
				first[d.path] = seen{st.Dev, st.Ino}
			} else if s := (seen{st.Dev, st.Ino}); s != first[d.path] {
				t.Errorf("%s is %+v in one container, %+v in the other: not one shared directory", d.path, first[d.path], s)
			}
		}
		if ents, err := os.ReadDir(filepath.Join(root, "/sys/firmware")); err != nil || len(ents) != 0 {
			t.Errorf("masked /sys/firmware in %s: %d entries (%v)", id, len(ents), err)
		}
	}
	// Inside, the directories are container root's: the probe's view.
	spec := testenv.Spec([]string{"/bin/stat", "-c", "%n %u:%g %a", "/sys/firmware", "/sys/fs/cgroup"})
	out := c.ok("run", "--bundle", testenv.Bundle(t, spec), leaks.Track(testenv.UniqueID(t)))
	if want := "/sys/firmware 0:0 555\n/sys/fs/cgroup 0:0 755\n"; out != want {
		t.Errorf("inside:\n%s\nwant\n%s", out, want)
	}
}

// TestSharedDirsPerTenant: the shared cover and skeleton are shared within one tenant (one id
// range) only, as the generated files are. Shared across tenants, they were one inode in every
// tenant's containers, and a container that watched it (inotify IN_OPEN, IN_ACCESS on its own
// /sys/fs/cgroup or /proc/acpi) saw, as they happened, another tenant's containers list theirs.
func TestSharedDirsPerTenant(t *testing.T) {
	c, leaks := newCLIAt(t, testenv.TmpfsDir(t))
	sr, pol := t.TempDir(), tenantsPolicy(t)
	bundle := testenv.Bundle(t, sleeper())
	leaks.Dir(bundle)
	inodes := map[string]map[string][2]uint64{}
	for _, tenant := range []string{"alice", "bob"} {
		as := []string{"--state-root", sr, "--policy", pol, "--tenant", tenant}
		id := leaks.Track(testenv.UniqueID(t) + "-" + tenant)
		c.ok(append(as, "create", "--bundle", bundle, id)...)
		t.Cleanup(func() { c.run(append(as, "delete", "--force", id)...) })
		root := fmt.Sprintf("/proc/%d/root", c.state(append(as, id)...).Pid)
		inodes[tenant] = map[string][2]uint64{}
		for _, d := range []string{"/sys/firmware", "/sys/fs/cgroup"} {
			var st unix.Stat_t
			if err := unix.Stat(filepath.Join(root, d), &st); err != nil {
				t.Fatal(err)
			}
			inodes[tenant][d] = [2]uint64{st.Dev, st.Ino}
		}
	}
	for d, a := range inodes["alice"] {
		if a == inodes["bob"][d] {
			t.Errorf("%s is one inode (device %#x, inode %d) in alice's and in bob's container", d, a[0], a[1])
		}
	}
}
