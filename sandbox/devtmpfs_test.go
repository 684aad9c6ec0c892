package sandbox

import (
	"testing"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/sandbox/setup"
)

func TestDevTmpfsPlan(t *testing.T) {
	dev := setup.MountPlan{Dest: "/dev", Type: "tmpfs", Source: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_STRICTATIME, Data: "mode=755,size=65536k"}
	opts, attrs, ok := devTmpfsPlan(dev)
	if !ok || len(opts) != 2 || attrs != unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC|unix.MOUNT_ATTR_STRICTATIME {
		t.Errorf("%+v: %v %#x %v", dev, opts, attrs, ok)
	}
	for name, mp := range map[string]setup.MountPlan{
		"uid":     {Dest: "/dev", Type: "tmpfs", Data: "mode=755,uid=0"},
		"context": {Dest: "/dev", Type: "tmpfs", Data: `context="system_u:object_r:container_file_t:s0:c1,c2"`},
		"sync":    {Dest: "/dev", Type: "tmpfs", Flags: unix.MS_SYNCHRONOUS},
		"bare":    {Dest: "/dev", Type: "tmpfs", Data: "noswap"},
		"bind":    {Dest: "/dev", Type: "bind"},
		"shm":     {Dest: "/dev/shm", Type: "tmpfs", Data: "size=1k"},
	} {
		if _, _, ok := devTmpfsPlan(mp); ok {
			t.Errorf("%s: %+v made by the runtime", name, mp)
		}
	}
}

// TestDevTmpfs: the runtime's /dev holds the minimal devices as the host's nodes are, host
// root's, and its root is the owner's.
func TestDevTmpfs(t *testing.T) {
	if unix.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dev := setup.MountPlan{Dest: "/dev", Type: "tmpfs", Source: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NOEXEC, Data: "mode=755,size=64k"}
	opts, attrs, _ := devTmpfsPlan(dev)
	fd, err := devTmpfs(dev, opts, attrs, [2]uint32{4242, 4343})
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var root unix.Stat_t
	if err := unix.Fstat(fd, &root); err != nil || root.Uid != 4242 || root.Gid != 4343 || root.Mode&0o7777 != 0o755 {
		t.Errorf("root %d:%d %o, %v", root.Uid, root.Gid, root.Mode&0o7777, err)
	}
	for _, name := range setup.MinimalDevices {
		var host, got unix.Stat_t
		if err := unix.Stat("/dev/"+name, &host); err != nil {
			t.Fatal(err)
		}
		if err := unix.Fstatat(fd, name, &got, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
		if got.Mode != host.Mode || got.Rdev != host.Rdev || got.Uid != 0 || got.Gid != 0 {
			t.Errorf("%s: mode %o rdev %#x %d:%d, host's %o %#x", name, got.Mode, got.Rdev, got.Uid, got.Gid, host.Mode, host.Rdev)
		}
	}
}
