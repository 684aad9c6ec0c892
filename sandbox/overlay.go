package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// An overlay rootfs (containerd's default overlayfs snapshotter mounts one at <bundle>/rootfs)
// cannot itself be idmapped (mount_setattr answers EINVAL), but an overlay whose layers are
// idmapped mounts works. So the parent idmaps each layer directory of the caller's overlay, upper
// first, and the child rebuilds the overlay from them inside the container's mount namespace:
//
//	parent: statfs(rootfs) == overlay → layer dirs from mountinfo → one idmapped mount each
//	child:  staging tmpfs on "/" ← layers attached as 0,1,…; upper/ and work/ on the tmpfs
//	        fsopen(overlay, lowerdir=layers, upperdir=upper) → detached mount = the rootfs
//	        staging tmpfs detached (the overlay holds its own references to the layers)
//
// The caller's upper layer becomes the top lower layer: the floor makes the root read-only
// anyway. The small tmpfs upper only receives the mountpoints and generated-file targets the
// runtime creates before the root is made read-only, and never the caller's files.

// overlayLayers returns the layer directories of rootfs, top first (upperdir, then each lowerdir),
// if rootfs is an overlay mount; nil if it is not an overlay.
func overlayLayers(rootfs string) ([]string, error) {
	var sfs unix.Statfs_t
	if err := unix.Statfs(rootfs, &sfs); err != nil {
		return nil, fmt.Errorf("statfs %s: %w", rootfs, err)
	}
	if sfs.Type != unix.OVERLAYFS_SUPER_MAGIC {
		return nil, nil
	}
	mp, err := filepath.EvalSymlinks(rootfs)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", rootfs, err)
	}
	// thread-self: the mount namespace that resolved rootfs above is this thread's.
	f, err := os.Open("/proc/thread-self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("mountinfo: %w", err)
	}
	defer f.Close()
	ms, err := mountinfo.GetMountsFromReader(f, mountinfo.SingleEntryFilter(mp))
	if err != nil {
		return nil, fmt.Errorf("mountinfo: %w", err)
	}
	if len(ms) == 0 || ms[len(ms)-1].FSType != "overlay" {
		return nil, fmt.Errorf("rootfs %s is inside an overlay but not its mount point: not supported", rootfs)
	}
	return parseOverlayOptions(ms[len(ms)-1].VFSOptions)
}

// parseOverlayOptions reads the layers, top first, from an overlay's super options as
// /proc/self/mountinfo shows them: commas separate options, colons separate lower layers, and
// the kernel escapes either inside a path as octal (\054, \072), as it does space and backslash.
func parseOverlayOptions(opts string) ([]string, error) {
	var upper string
	var lowers []string
	for _, o := range strings.Split(opts, ",") {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "upperdir":
			upper = v
		case "lowerdir":
			lowers = strings.Split(v, ":")
		case "lowerdir+", "datadir+":
			// Layers added one by one through fsconfig (kernel ≥ 6.8): shown one option each.
			if k == "datadir+" {
				return nil, errors.New("overlay rootfs with data-only layers: not supported")
			}
			lowers = append(lowers, v)
		}
	}
	if len(lowers) == 0 {
		return nil, fmt.Errorf("overlay rootfs without lowerdir in %q", opts)
	}
	var out []string
	if upper != "" {
		out = append(out, upper)
	}
	for _, l := range lowers {
		if l == "" { // "a::b" marks data-only layers
			return nil, errors.New("overlay rootfs with data-only layers: not supported")
		}
		out = append(out, l)
	}
	for i, p := range out {
		u, err := unescapeOctal(p)
		if err != nil || !filepath.IsAbs(u) {
			return nil, fmt.Errorf("overlay layer %q: not an absolute path", p)
		}
		out[i] = u
	}
	return out, nil
}

// unescapeOctal undoes the kernel's seq_escape (\ooo for each escaped byte).
func unescapeOctal(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+3 >= len(s) {
			return "", fmt.Errorf("truncated escape in %q", s)
		}
		n, err := strconv.ParseUint(s[i+1:i+4], 8, 8)
		if err != nil {
			return "", fmt.Errorf("bad escape in %q", s)
		}
		b.WriteByte(byte(n))
		i += 3
	}
	return b.String(), nil
}

// overlayUpperSize bounds the child's tmpfs upper layer: it only holds mountpoints and the
// targets of generated files.
const overlayUpperSize = "1m"

// assembleOverlay runs in the child, in the container's mount and user namespaces: it builds a
// detached overlay from the donated idmapped layer mounts (top first) and returns it; the caller
// attaches it like an idmapped rootfs. The layers' descriptors end up attached to the staging
// tmpfs, which is detached again before return.
func assembleOverlay(layers []int) (int, error) {
	stage, err := fsmount("tmpfs", map[string]string{"size": overlayUpperSize, "mode": "0700"},
		unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return -1, fmt.Errorf("staging tmpfs: %w", err)
	}
	defer unix.Close(stage)
	// overlayfs resolves its layers by path, in the mounter's mount namespace: attach the staging
	// tmpfs (on "/", where the rootfs goes next; it is detached before that).
	if err := unix.MoveMount(stage, "", unix.AT_FDCWD, "/", unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return -1, fmt.Errorf("attach staging tmpfs: %w", err)
	}
	defer unix.Unmount(fdPath(stage), unix.MNT_DETACH)
	var lower []string
	for i, fd := range layers {
		name := strconv.Itoa(i)
		t, err := mkdirAt(stage, name)
		if err != nil {
			return -1, err
		}
		err = unix.MoveMount(fd, "", t, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
		unix.Close(t)
		if err != nil {
			return -1, fmt.Errorf("attach layer %d: %w", i, err)
		}
		lower = append(lower, fdPath(fd))
	}
	upper, err := mkdirAt(stage, "upper")
	if err != nil {
		return -1, err
	}
	defer unix.Close(upper)
	work, err := mkdirAt(stage, "work")
	if err != nil {
		return -1, err
	}
	defer unix.Close(work)
	root, err := fsmount("overlay", map[string]string{
		"lowerdir": strings.Join(lower, ":"), "upperdir": fdPath(upper), "workdir": fdPath(work),
		// The overlay is mounted in a user namespace: its own whiteouts and opaque markers go to
		// user.* xattrs (the tmpfs upper cannot take trusted.* from here).
		"userxattr": "",
	}, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV)
	if err != nil {
		return -1, fmt.Errorf("overlay of %d layers: %w", len(lower), err)
	}
	return root, nil
}

// fsmount creates a detached mount of a new fstype superblock with the given options ("" value:
// a flag).
func fsmount(fstype string, opts map[string]string, attrs int) (int, error) {
	fsfd, err := unix.Fsopen(fstype, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsopen %s: %w", fstype, err)
	}
	defer unix.Close(fsfd)
	for k, v := range opts {
		if v == "" {
			err = unix.FsconfigSetFlag(fsfd, k)
		} else {
			err = unix.FsconfigSetString(fsfd, k, v)
		}
		if err != nil {
			return -1, fmt.Errorf("%s option %s=%s: %w", fstype, k, v, err)
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return -1, fmt.Errorf("create %s: %w", fstype, err)
	}
	fd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, attrs)
	if err != nil {
		return -1, fmt.Errorf("fsmount %s: %w", fstype, err)
	}
	return fd, nil
}

// mkdirAt makes directory name below dir and opens it as a path descriptor.
func mkdirAt(dir int, name string) (int, error) {
	if err := unix.Mkdirat(dir, name, 0o700); err != nil {
		return -1, fmt.Errorf("mkdir %s on staging tmpfs: %w", name, err)
	}
	fd, err := unix.Openat(dir, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s on staging tmpfs: %w", name, err)
	}
	return fd, nil
}
