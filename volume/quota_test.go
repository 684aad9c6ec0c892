package volume

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/errdefs"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"4194304": 4 << 20, "10m": 10 << 20, "10M": 10 << 20, "10MB": 10 << 20,
		"10MiB": 10 << 20, "1g": 1 << 30, "2t": 2 << 40, "512k": 512 << 10, " 7m ": 7 << 20} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "m", "-1m", "0", "1.5g", "10x", "9999999999t", "1e6"} {
		if _, err := ParseSize(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParseSize(%q): %v, want invalid argument", bad, err)
		}
	}
}

// loopsUnder lists the loop devices whose backing file is below dir.
func loopsUnder(t *testing.T, dir string) []string {
	t.Helper()
	files, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	var out []string
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && strings.HasPrefix(string(b), dir+"/") {
			out = append(out, f)
		}
	}
	return out
}

// mountsUnder lists this mount namespace's mount points below dir.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			out = append(out, f[4])
		}
	}
	return out
}

// quotaRoot is a state root whose mounts are undone however the test ends.
func quotaRoot(t *testing.T) (string, *Store) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (loop devices, mounts)")
	}
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, m := range mountsUnder(t, root) {
			unix.Unmount(m, unix.MNT_DETACH)
		}
	})
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	return root, s
}

// TestReservationKept: a mounted volume keeps every block reserved for its image. Without
// noinit_itable the kernel's ext4lazyinit zeroes the inode tables mke2fs left uninitialised in the
// first seconds after the mount, and through the loop device that punches holes in the image
// (a 64 MiB image lost 4 MiB), handing part of the reservation back to the host.
func TestReservationKept(t *testing.T) {
	_, s := quotaRoot(t)
	v, _, err := s.Create("acme", "kept", Options{Size: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(filepath.Dir(v.Mountpoint), imageFile)
	var before unix.Stat_t
	if err := unix.Stat(img, &before); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 30; i++ {
		time.Sleep(100 * time.Millisecond)
		var now unix.Stat_t
		if err := unix.Stat(img, &now); err != nil || now.Blocks != before.Blocks {
			t.Fatalf("the mounted image's blocks changed: %d → %d after %d ms (%v)", before.Blocks, now.Blocks, (i+1)*100, err)
		}
	}
}

// TestSizedVolume: a volume with a size is a filesystem of that size: a write past it fails
// with ENOSPC and the host's filesystem does not grow; the volume is mounted again when it is
// asked for after its mount went (a reboot); removing it leaves no mount and no loop device.
func TestSizedVolume(t *testing.T) {
	root, s := quotaRoot(t)
	v, created, err := s.Create("acme", "small", Options{Size: 8 << 20})
	if err != nil || !created || v.Size != 8<<20 {
		t.Fatalf("create: %+v %v %v", v, created, err)
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(v.Mountpoint, &sfs); err != nil || sfs.Type != unix.EXT4_SUPER_MAGIC || int64(sfs.Blocks)*sfs.Bsize > 8<<20 {
		t.Fatalf("statfs of the volume: %+v %v", sfs, err)
	}
	img := filepath.Join(filepath.Dir(v.Mountpoint), imageFile)
	var before unix.Stat_t
	if err := unix.Stat(img, &before); err != nil || before.Blocks*512 < 8<<20 {
		t.Fatalf("the image's blocks are not reserved: %d bytes allocated (%v)", before.Blocks*512, err)
	}
	f, err := os.Create(filepath.Join(v.Mountpoint, "fill"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	var werr error
	for i := 0; i < 16 && werr == nil; i++ {
		_, werr = f.Write(buf)
	}
	if werr == nil {
		werr = f.Sync()
	}
	f.Close()
	if !errors.Is(werr, unix.ENOSPC) {
		t.Errorf("writing 16 MiB into an 8 MiB volume: %v, want ENOSPC", werr)
	}
	// The image's blocks were reserved at creation: filling it takes nothing more from the host.
	var after unix.Stat_t
	// (Nor fewer: none of it is handed back to the host — mounted with noinit_itable.)
	if err := unix.Stat(img, &after); err != nil || after.Blocks != before.Blocks || after.Size != 8<<20 {
		t.Errorf("the image's blocks on the host changed: %d → %d blocks, size %d (%v)", before.Blocks, after.Blocks, after.Size, err)
	}

	// Mounted again on demand (as after a reboot), with its data.
	if err := unix.Unmount(v.Mountpoint, 0); err != nil {
		t.Fatal(err)
	}
	if _, created, err := s.Create("acme", "small", Options{}); err != nil || created {
		t.Fatalf("create of the existing volume: %v %v", created, err)
	}
	if _, err := os.Stat(filepath.Join(v.Mountpoint, "fill")); err != nil {
		t.Errorf("after the remount: %v", err)
	}
	if _, _, err := s.Create("acme", "tiny", Options{Size: 1 << 20}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("a 1 MiB volume: %v", err)
	}

	if err := s.Remove("acme", "small", never); err != nil {
		t.Fatal(err)
	}
	if m := mountsUnder(t, root); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
	if l := loopsUnder(t, root); len(l) != 0 {
		t.Errorf("loop devices left: %v", l)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "volumes", "acme")); len(ents) != 0 {
		t.Errorf("left: %v", ents)
	}
}

// TestSizedCreateLeftovers: a creation that died half-way (a hidden directory with a partial
// image) is removed by the next change to the tenant's volumes; the tenant's total is checked
// with what its volumes take.
func TestSizedCreateLeftovers(t *testing.T) {
	root, s := quotaRoot(t)
	td := filepath.Join(root, "volumes", "acme")
	dead := filepath.Join(td, ".new-123")
	if err := os.MkdirAll(filepath.Join(dead, "_data"), 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dead, imageFile), make([]byte, 4096), 0o600)
	var seen []int64
	size := func(used int64) (int64, error) {
		seen = append(seen, used)
		if used+5<<20 > 9<<20 {
			return 0, errdefs.Errorf(errdefs.ErrRefusedByPolicy, "over the total")
		}
		return 5 << 20, nil
	}
	if _, _, err := s.CreateSized("acme", "a", false, size); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dead); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the dead creation's directory: %v", err)
	}
	if _, _, err := s.CreateSized("acme", "b", false, size); !errors.Is(err, errdefs.ErrRefusedByPolicy) {
		t.Errorf("over the total: %v", err)
	}
	if len(seen) != 2 || seen[0] != 0 || seen[1] != 5<<20 {
		t.Errorf("used sizes seen: %v", seen)
	}
	if names, err := s.Prune("acme", never); err != nil || len(names) != 1 {
		t.Errorf("prune: %v %v", names, err)
	}
	if l := loopsUnder(t, root); len(l) != 0 || len(mountsUnder(t, root)) != 0 {
		t.Errorf("left: loops %v mounts %v", l, mountsUnder(t, root))
	}
}

// TestMountDetached: a filesystem image mounted detached is attached nowhere; mounted again
// while the first mount lives, it is the same filesystem on the same loop device (never two
// filesystems over one image); its loop device goes with the last mount.
func TestMountDetached(t *testing.T) {
	root, _ := quotaRoot(t)
	img := filepath.Join(root, "upper.img")
	if err := MakeFilesystem(img, 8<<20); err != nil {
		t.Fatal(err)
	}
	if err := MakeFilesystem(filepath.Join(root, "small.img"), 1<<20); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("a 1 MiB filesystem: %v", err)
	}
	a, err := MountDetached(img)
	if err != nil {
		t.Fatal(err)
	}
	b, err := MountDetached(img)
	if err != nil {
		t.Fatal(err)
	}
	var sa, sb unix.Stat_t
	unix.Fstat(int(a.Fd()), &sa)
	unix.Fstat(int(b.Fd()), &sb)
	if sa.Dev != sb.Dev || len(loopsUnder(t, root)) != 1 {
		t.Errorf("two mounts of one image: devices %d and %d, loop devices %v", sa.Dev, sb.Dev, loopsUnder(t, root))
	}
	if m := mountsUnder(t, root); len(m) != 0 {
		t.Errorf("attached: %v", m)
	}
	a.Close()
	b.Close()
	// The kernel lets the superblock and the autoclear loop device go after the last close.
	deadline := time.Now().Add(10 * time.Second)
	for len(loopsUnder(t, root)) != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if l := loopsUnder(t, root); len(l) != 0 {
		t.Errorf("loop devices left: %v", l)
	}
}
