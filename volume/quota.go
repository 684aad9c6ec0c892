package volume

// Size limits (issue 12, seed 8.4.4). A volume with a size is its own ext4 filesystem: an image
// file of exactly that size next to its record (<name>/disk.img), its blocks reserved on the
// host when it is made (fallocate), mounted through a loop device on its _data directory. The
// kernel enforces the limit: a write past it fails with ENOSPC inside the volume's filesystem,
// and since the image's blocks were reserved up front, a full volume takes nothing more from the
// host, whatever the sum of the volumes. Project quotas would need the state root on a
// filesystem mounted with them (this host's / is ext4 without); a loop image works on any
// filesystem that has fallocate, keeps one volume's inodes and blocks from another's, and shows
// the container its own size in df.
//
// Lifecycle. The image is made (fallocate + mkfs.ext4) inside the hidden creation directory,
// before the rename that publishes the volume, so a creation killed half-way leaves only a
// hidden directory, with no loop device and no mount, which the next command of the tenant
// removes (every change to a tenant's volumes holds the tenant's lock, so a hidden directory
// seen under the lock belongs to a dead process). The mount lives under the state root, in the
// host's mount namespace, because the volume store is the one that fills and reads it between
// containers and several containers may share it; nothing else is mounted. It is made on
// demand (Create returns a mounted volume, after a reboot too) and removed by Remove. The loop
// device is configured with LO_FLAGS_AUTOCLEAR while this process holds it open, so the kernel
// detaches it when the filesystem is unmounted, or at once if this process dies before the mount.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/errdefs"
	"bulwark.dev/bulwark/internal/flock"
	"bulwark.dev/bulwark/sandbox"
)

const (
	// imageFile is a sized volume's filesystem image, beside its record.
	imageFile = "disk.img"
	// MinSize is the smallest size a volume can have: ext4's journal alone takes 1 MiB.
	MinSize = 4 << 20
	// bigVolume is the size from which a volume's filesystem has 4 KiB blocks (and a 4 MiB
	// journal); smaller ones keep mke2fs's 1 KiB blocks (and a 1 MiB journal).
	bigVolume = 128 << 20
)

// ParseSize reads a volume size in docker's notation: a number of bytes with an optional k, m,
// g or t suffix (binary units, an optional b or ib after it), e.g. 10m, 1GiB.
func ParseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "b"), "i")
	shift := 0
	if n := len(t); n > 0 {
		if i := strings.IndexByte("kmgt", t[n-1]); i >= 0 {
			shift, t = 10*(i+1), t[:n-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)>>shift {
		return 0, errdefs.Errorf(errdefs.ErrInvalidArgument, "volume size %q: want a positive number of bytes with an optional k, m, g or t suffix", s)
	}
	return n << shift, nil
}

// lockTenant takes the tenant's lock, a flock on its directory (created if missing), held by
// every change to its volumes, and returns its release.
func (s *Store) lockTenant(tenant string) (func(), error) {
	td := s.tenantDir(tenant)
	if err := os.MkdirAll(td, 0o700); err != nil {
		return nil, fmt.Errorf("volumes of %s: %w", tenant, err)
	}
	f, err := os.OpenFile(td, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("lock volumes of %s: %w", tenant, err)
	}
	if err := flock.Lock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock volumes of %s: %w", tenant, err)
	}
	return func() { f.Close() }, nil
}

// collectLeftovers removes what a dead process left in the tenant's directory: hidden creation
// (.new-*) and removal (.rm-*) directories, each unmounted first. The caller holds the lock.
func (s *Store) collectLeftovers(tenant string) error {
	left, err := filepath.Glob(filepath.Join(s.tenantDir(tenant), ".[nr][em]*-*"))
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range left {
		if b := filepath.Base(l); !strings.HasPrefix(b, ".new-") && !strings.HasPrefix(b, ".rm-") {
			continue
		}
		if err := unmountImage(l); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.RemoveAll(l); err != nil {
			errs = append(errs, fmt.Errorf("remove leftover %s: %w", l, err))
		}
	}
	return errors.Join(errs...)
}

// makeImage makes dir/disk.img (MakeFilesystem).
func makeImage(dir string, size int64) error {
	return MakeFilesystem(filepath.Join(dir, imageFile), size)
}

// MakeFilesystem makes the image file img (which must not exist) of size bytes, reserved on the
// host, holding an ext4 filesystem whose root belongs to the storage range (container root
// through an idmapped mount), with no blocks reserved for root (container root would get them)
// and no discard (mke2fs would punch the reservation out of the file again).
func MakeFilesystem(img string, size int64) error {
	if size < MinSize {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "filesystem of %d bytes: the minimum is %d (4 MiB)", size, MinSize)
	}
	f, err := os.OpenFile(img, os.O_RDWR|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("volume image: %w", err)
	}
	err = unix.Fallocate(int(f.Fd()), 0, 0, size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("reserve %d bytes for the volume image: %w", size, err)
	}
	owner := strconv.FormatUint(uint64(sandbox.StorageIDBase), 10)
	args := []string{"-q", "-F", "-m", "0", "-E", "nodiscard,root_owner=" + owner + ":" + owner}
	if size >= bigVolume {
		// mke2fs gives a filesystem below 512 MiB 1 KiB blocks (a small journal), which halves
		// the write throughput of a mid-sized one (BenchmarkQuotaWrite: 0.57 of a plain
		// directory's, 1.1 with 4 KiB blocks).
		args = append(args, "-b", "4096")
	}
	cmd := exec.Command("mkfs.ext4", append(args, img)...)
	// A creation killed half-way must not leave mkfs writing into what the next command collects.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Env = []string{"PATH=/usr/sbin:/sbin:/usr/bin:/bin"}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mkfs.ext4 on the volume image: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// noInitItable is the ext4 mount option that keeps the kernel from zeroing the inode tables mke2fs
// left uninitialised (ext4lazyinit): through a loop device the zeroing punches holes in the image
// file, handing part of the volume's up-front reservation back to the host (a 64 MiB image lost
// 4 MiB of its blocks within 3 s of its first mount). The tables' uninitialised state is checksummed
// in the group descriptors, so ext4 never needs them zeroed.
const noInitItable = "noinit_itable"

// mountImage mounts dir/disk.img on dir/_data unless it is mounted there already. The caller
// holds the tenant's lock, so two processes never attach the same image twice (two loop
// devices over one image would be two filesystems writing the same blocks).
func mountImage(dir string) error {
	img, data := filepath.Join(dir, imageFile), filepath.Join(dir, "_data")
	if dev, mounted, err := mountedDevice(dir); err != nil {
		return err
	} else if mounted {
		return checkOwnLoop(dev, img)
	}
	loop, err := attachLoop(img)
	if err != nil {
		return err
	}
	defer loop.Close() // from here the mount holds the device; autoclear detaches it on unmount
	if err := unix.Mount(loop.Name(), data, "ext4", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, noInitItable); err != nil {
		return fmt.Errorf("mount volume image %s on %s: %w", img, data, err)
	}
	return nil
}

// mountedDevice reports whether dir/_data is a mount point, and the device mounted there.
func mountedDevice(dir string) (uint64, bool, error) {
	var parent, data unix.Stat_t
	if err := unix.Lstat(dir, &parent); err != nil {
		return 0, false, fmt.Errorf("volume %s: %w", dir, err)
	}
	if err := unix.Lstat(filepath.Join(dir, "_data"), &data); err != nil {
		return 0, false, fmt.Errorf("volume %s: %w", dir, err)
	}
	if data.Mode&unix.S_IFMT != unix.S_IFDIR {
		return 0, false, fmt.Errorf("volume %s: _data is not a directory", dir)
	}
	return data.Dev, data.Dev != parent.Dev, nil
}

// checkOwnLoop refuses a mount on a volume's _data that is not a loop device over its image.
func checkOwnLoop(dev uint64, img string) error {
	b, err := os.ReadFile(fmt.Sprintf("/sys/dev/block/%d:%d/loop/backing_file", unix.Major(dev), unix.Minor(dev)))
	real, rerr := filepath.EvalSymlinks(img)
	if err != nil || rerr != nil || strings.TrimSpace(string(b)) != real {
		return fmt.Errorf("volume image %s: something else is mounted on its _data", img)
	}
	return nil
}

// attachLoop binds a free loop device to img with LO_FLAGS_AUTOCLEAR and returns it open: the
// kernel detaches it when the last holder (this descriptor, then the mount) lets go.
func attachLoop(img string) (*os.File, error) {
	backing, err := os.OpenFile(img, os.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("volume image: %w", err)
	}
	defer backing.Close()
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("loop devices: %w", err)
	}
	defer ctl.Close()
	for attempt := 0; ; attempt++ {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, fmt.Errorf("free loop device: %w", err)
		}
		loop, err := os.OpenFile("/dev/loop"+strconv.Itoa(n), os.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("loop device: %w", err)
		}
		// Direct I/O: the image's pages are not cached twice (the volume's filesystem caches
		// them), and writes are faster (BenchmarkQuotaWrite: 1.1 of a plain directory's against
		// 0.9 buffered). A filesystem without O_DIRECT gets a buffered device.
		cfg := unix.LoopConfig{Fd: uint32(backing.Fd()), Info: unix.LoopInfo64{Flags: unix.LO_FLAGS_AUTOCLEAR | unix.LO_FLAGS_DIRECT_IO}}
		copy(cfg.Info.File_name[:], img)
		err = unix.IoctlLoopConfigure(int(loop.Fd()), &cfg)
		if errors.Is(err, unix.EINVAL) {
			cfg.Info.Flags &^= unix.LO_FLAGS_DIRECT_IO
			err = unix.IoctlLoopConfigure(int(loop.Fd()), &cfg)
		}
		if err == nil {
			return loop, nil
		}
		loop.Close()
		// Another process took the free device between the two calls: ask again.
		if !errors.Is(err, unix.EBUSY) || attempt == 16 {
			return nil, fmt.Errorf("attach %s to a loop device: %w", img, err)
		}
	}
}

// unmountImage unmounts dir/_data if something is mounted there. Detached: a container that
// still has the volume keeps its own mount of the filesystem, and the loop device goes when it
// does.
func unmountImage(dir string) error {
	_, mounted, err := mountedDevice(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil || !mounted {
		return err
	}
	if err := unix.Unmount(filepath.Join(dir, "_data"), unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil {
		return fmt.Errorf("unmount volume %s: %w", dir, err)
	}
	return nil
}

// activate makes v ready to mount: a sized volume's filesystem mounted on its _data (after a
// reboot, or a Remove that failed half-way, it is not). The caller holds the tenant's lock.
func (s *Store) activate(v *Volume) error {
	if v.Size == 0 {
		return nil
	}
	if err := mountImage(filepath.Dir(v.Mountpoint)); err != nil {
		return fmt.Errorf("volume %s: %w", v.Name, err)
	}
	return nil
}

// activateNew is activate for a volume just made: a sized one's new filesystem loses the
// lost+found mkfs made, so it starts empty (and is filled from the image like any other).
func (s *Store) activateNew(v *Volume) error {
	if err := s.activate(v); err != nil || v.Size == 0 {
		return err
	}
	if err := os.Remove(filepath.Join(v.Mountpoint, "lost+found")); err != nil {
		return fmt.Errorf("volume %s: %w", v.Name, err)
	}
	return nil
}

// usedSize is the sum of the sizes of the tenant's volumes (those without a size count 0) and
// of what CountAlso counts for it.
func (s *Store) usedSize(tenant string) (int64, error) {
	vs, err := s.List(tenant)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, v := range vs {
		n += v.Size
	}
	if s.counted != nil {
		more, err := s.counted(tenant)
		if err != nil {
			return 0, fmt.Errorf("size of tenant %s's storage: %w", tenant, err)
		}
		n += more
	}
	return n, nil
}

// MountDetached mounts the filesystem image img (MakeFilesystem) as a detached mount (nosuid,
// nodev), attached nowhere: whoever it is handed to (a container's overlay) keeps it, and its
// loop device goes when the last of them does. A loop device still bound to img (an earlier
// mount not yet gone) is used again, so the same image is never two filesystems at once.
func MountDetached(img string) (*os.File, error) {
	loop, err := boundLoop(img)
	if err != nil {
		return nil, err
	}
	if loop == nil {
		if loop, err = attachLoop(img); err != nil {
			return nil, err
		}
	}
	defer loop.Close()
	fsfd, err := unix.Fsopen("ext4", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("fsopen ext4: %w", err)
	}
	defer unix.Close(fsfd)
	if err := unix.FsconfigSetString(fsfd, "source", loop.Name()); err != nil {
		return nil, fmt.Errorf("mount %s: %w", img, err)
	}
	if err := unix.FsconfigSetFlag(fsfd, noInitItable); err != nil {
		return nil, fmt.Errorf("mount %s: %w", img, err)
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return nil, fmt.Errorf("mount %s: %w", img, err)
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV)
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", img, err)
	}
	return os.NewFile(uintptr(mfd), img), nil
}

// boundLoop returns, open, a loop device bound to img, or nil if there is none. A device is
// taken only if, once open (which keeps an autoclear device bound), the kernel says it is bound
// to img's inode.
func boundLoop(img string) (*os.File, error) {
	var st unix.Stat_t
	if err := unix.Stat(img, &st); err != nil {
		return nil, fmt.Errorf("filesystem image: %w", err)
	}
	real, err := filepath.EvalSymlinks(img)
	if err != nil {
		return nil, fmt.Errorf("filesystem image: %w", err)
	}
	files, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, f := range files {
		if b, err := os.ReadFile(f); err != nil || strings.TrimSpace(string(b)) != real {
			continue
		}
		loop, err := os.OpenFile("/dev/"+filepath.Base(filepath.Dir(filepath.Dir(f))), os.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			continue // gone meanwhile
		}
		info, err := unix.IoctlLoopGetStatus64(int(loop.Fd()))
		if err == nil && info.Inode == st.Ino && info.Device == st.Dev {
			return loop, nil
		}
		loop.Close()
	}
	return nil, nil
}
