package runc

import (
	"fmt"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

// TestCoversOnDiskRootAreTmpfs: on a state root on disk, a masked directory is covered, and a
// cgroup v1 or hybrid host's cgroup views are mounted on, a tmpfs, as runc does — never a
// directory of the state root's disk. systemd (cg_unified_cached) takes /sys/fs/cgroup for a v1
// or hybrid hierarchy only on a tmpfs and stops on anything else ("Unknown filesystem type …
// mounted on /sys/fs/cgroup", ENOMEDIUM); and statfs of a directory of that disk shows the
// container the host's block device, the state root's path (mountinfo) and the disk's live
// usage, which other tenants' writes move.
func TestCoversOnDiskRootAreTmpfs(t *testing.T) {
	c, leaks := newCLI(t)
	var rootFS unix.Statfs_t
	if err := unix.Statfs(c.root, &rootFS); err != nil || rootFS.Type == unix.TMPFS_MAGIC {
		t.Skipf("the temp dir %s is a tmpfs (or statfs failed: %v)", c.root, err)
	}
	var host unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &host); err != nil {
		t.Fatal(err)
	}
	dirs := []string{"/sys/firmware"}
	if host.Type == unix.TMPFS_MAGIC { // v1 or hybrid: the views are mounted on a skeleton
		dirs = append(dirs, "/sys/fs/cgroup")
	}
	var rootSt unix.Stat_t
	if err := unix.Stat(c.root, &rootSt); err != nil {
		t.Fatal(err)
	}
	id := leaks.Track(testenv.UniqueID(t))
	c.ok("create", "--bundle", testenv.Bundle(t, sleeper()), id)
	t.Cleanup(func() { c.run("delete", "--force", id) })
	root := fmt.Sprintf("/proc/%d/root", c.state(id).Pid)
	want := ""
	for _, d := range dirs {
		var fs unix.Statfs_t
		var st unix.Stat_t
		if err := unix.Statfs(filepath.Join(root, d), &fs); err != nil {
			t.Fatal(err)
		}
		if err := unix.Stat(filepath.Join(root, d), &st); err != nil {
			t.Fatal(err)
		}
		if fs.Type != unix.TMPFS_MAGIC {
			t.Errorf("%s: filesystem %#x, want a tmpfs (%#x)", d, fs.Type, unix.TMPFS_MAGIC)
		}
		if st.Dev == rootSt.Dev {
			t.Errorf("%s is a directory of the state root's filesystem (device %#x)", d, st.Dev)
		}
		want += d + " tmpfs\n"
	}
	// What a program inside sees (systemd's statfs of /sys/fs/cgroup).
	args := append([]string{"/bin/stat", "-f", "-c", "%n %T"}, dirs...)
	if out := c.ok("run", "--bundle", testenv.Bundle(t, testenv.Spec(args)), leaks.Track(testenv.UniqueID(t))); out != want {
		t.Errorf("inside:\n%s\nwant\n%s", out, want)
	}
}
