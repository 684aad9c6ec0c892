package setup

import (
	"errors"
	"fmt"
	"path"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/openat2"
)

// Child-side filesystem setup. Every target is resolved inside the rootfs with openat2
// RESOLVE_IN_ROOT (a symlink or ".." in the image can never lead outside it), then mounted on
// through its /proc/self/fd magic link or with the fd-based mount API, so no path is resolved
// twice. Host paths are only used before pivot_root, for the device nodes.

// inRootFlags: resolve as if the rootfs were "/", and never through a magic link (/proc/*/fd,
// /proc/*/root) that could jump to another filesystem tree.
const inRootFlags = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

func openInRoot(root int, p string, flags int) (int, error) {
	fd, err := openat2.Open(root, p, &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: inRootFlags})
	if err != nil {
		return -1, &pathError{op: "openat2", path: p, err: err}
	}
	return fd, nil
}

type pathError struct {
	op, path string
	err      error
}

func (e *pathError) Error() string { return e.op + " " + e.path + ": " + e.err.Error() }
func (e *pathError) Unwrap() error { return e.err }

// mkdirInRoot creates p (and its parents) inside root if missing and returns an O_PATH fd of it.
// A dangling symlink on the way is followed inside the root (its target is created there), so
// an image's link to /etc or ../../x is contained rather than an escape or an error.
func mkdirInRoot(root int, p string) (int, error) { return mkdirDepth(root, p, 0) }

// maxLinks bounds symlink following, as the kernel's ELOOP limit does.
const maxLinks = 40

func mkdirDepth(root int, p string, depth int) (int, error) {
	fd, err := openInRoot(root, p, unix.O_PATH|unix.O_DIRECTORY)
	if err == nil || !errors.Is(err, unix.ENOENT) {
		return fd, err
	}
	if depth > maxLinks {
		return -1, &pathError{op: "mkdir", path: p, err: unix.ELOOP}
	}
	parent, err := mkdirDepth(root, path.Dir(p), depth+1)
	if err != nil {
		return -1, err
	}
	defer unix.Close(parent)
	err = unix.Mkdirat(parent, path.Base(p), 0o755)
	if err == unix.EEXIST {
		if target, ok := danglingLink(parent, path.Base(p)); ok {
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(p), target)
			}
			return mkdirDepth(root, path.Clean("/"+target), depth+1)
		}
	} else if err != nil {
		return -1, &pathError{op: "mkdir", path: p, err: err}
	}
	return openInRoot(root, p, unix.O_PATH|unix.O_DIRECTORY)
}

// danglingLink returns the target of name in dir if it is a symlink.
func danglingLink(dir int, name string) (string, bool) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dir, name, buf)
	if err != nil {
		return "", false
	}
	return string(buf[:n]), true
}

// fileInRoot creates p as an empty file inside root if missing and returns an O_PATH fd of it,
// following a dangling symlink inside the root as mkdirInRoot does.
func fileInRoot(root int, p string) (int, error) { return fileDepth(root, p, 0) }

func fileDepth(root int, p string, depth int) (int, error) {
	fd, err := openInRoot(root, p, unix.O_PATH)
	if err == nil || !errors.Is(err, unix.ENOENT) {
		return fd, err
	}
	if depth > maxLinks {
		return -1, &pathError{op: "create", path: p, err: unix.ELOOP}
	}
	parent, err := mkdirInRoot(root, path.Dir(p))
	if err != nil {
		return -1, err
	}
	defer unix.Close(parent)
	nfd, err := unix.Openat(parent, path.Base(p), unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
	switch {
	case err == nil:
		unix.Close(nfd)
	case err == unix.EEXIST:
		if target, ok := danglingLink(parent, path.Base(p)); ok {
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(p), target)
			}
			return fileDepth(root, path.Clean("/"+target), depth+1)
		}
	default:
		return -1, &pathError{op: "create", path: p, err: err}
	}
	return openInRoot(root, p, unix.O_PATH)
}

func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

func isDirFD(fd int) (bool, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false, err
	}
	return st.Mode&unix.S_IFMT == unix.S_IFDIR, nil
}

// setupRootfs attaches the idmapped rootfs, mounts everything the plan lists inside it, masks and
// write-protects the dangerous /proc and /sys paths, pivots into it and makes it read-only. The
// host's tree is still being detached when it returns: see pivot for the wait it returns.
func setupRootfs(cfg *Config, fds []int) (detached func() error, ierr *InitError) {
	if cfg.RootfsFD < 0 || cfg.RootfsFD >= len(fds) {
		return nil, stepError("mounts", "rootfs descriptor", "", errString("no rootfs mount was donated"))
	}
	root := fds[cfg.RootfsFD]
	// Nothing done below may propagate back to the host's mount namespace.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return nil, stepError("mounts", "make / rprivate", "/", err)
	}
	// Attach the detached idmapped rootfs on top of "/": path lookups from our root still see the
	// host tree beneath (for /dev and /proc/self/fd) until pivot_root swaps them.
	if err := unix.MoveMount(root, "", unix.AT_FDCWD, "/", unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return nil, stepError("mounts", "attach rootfs (move_mount)", "/", err)
	}
	if err := makePrivate(root); err != nil {
		return nil, stepError("mounts", "make rootfs rprivate", "/", err)
	}
	st := newStaging()
	defer st.close() // on errors before pivot_root; finish closes it otherwise
	if fd, ok := donated(cfg.MaskDirFD, fds); ok {
		st.emptyFD = fd
	}
	if fd, ok := donated(cfg.CgroupSkelFD, fds); ok {
		st.skelFD = fd
	}
	for i := 0; i < len(cfg.Mounts); i++ {
		m := cfg.Mounts[i]
		if m.Type == "cgroup2" {
			if err := mountCgroups(root, st, m.Dest, cfg.Cgroups); err != nil {
				return nil, stepError("mounts", "mount the container's cgroups", m.Dest, err)
			}
			continue
		}
		// A lone scratch mount is a tmpfs of its own: a shared superblock would only add its root.
		if n := scratchRun(cfg.Mounts[i:]); n > 1 {
			if err := mountScratch(root, cfg.Mounts[i:i+n]); err != nil {
				return nil, stepError("mounts", "mount the scratch tmpfs", m.Dest, err)
			}
			i += n - 1
			continue
		}
		if err := mountOne(root, m, fds); err != nil {
			return nil, stepError("mounts", "mount "+m.Type, m.Dest, err)
		}
	}
	if err := generatedMounts(root, st, cfg.Files, fds); err != nil {
		return nil, stepError("mounts", "generated /etc files", "", err)
	}
	// A working directory the image lacks is created, as runc does (on a layered root it goes to
	// the container's private upper): the root is read-only once pivoted. Where it cannot be
	// (under /proc, a read-only bind), the process step's cwd check refuses and says why.
	if cwd := cfg.Process.Cwd; cwd != "" && cwd != "/" {
		if fd, err := mkdirInRoot(root, cwd); err == nil {
			unix.Close(fd)
		}
	}
	for k, v := range cfg.Sysctl {
		if err := writeSysctl(root, k, v); err != nil {
			return nil, stepError("sysctl", "write "+k, "", err)
		}
	}
	for _, p := range cfg.MaskedPaths {
		if err := maskPath(root, st, p); err != nil {
			return nil, stepError("mounts", "mask path", p, err)
		}
	}
	for _, p := range cfg.ReadonlyPaths {
		if err := readonlyPath(root, p); err != nil {
			return nil, stepError("mounts", "read-only path", p, err)
		}
	}
	if err := st.finish(); err != nil {
		return nil, stepError("mounts", "seal the staging tmpfs", "", err)
	}
	detached, err := pivot(root)
	if err != nil {
		return nil, stepError("mounts", "pivot_root", "/", err)
	}
	// The root becomes read-only only now: mountpoints had to be created in it first. A writable
	// root (the caller's grant, with its size-limited upper) stays writable, nosuid and nodev.
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if cfg.WritableRoot {
		attr.Attr_set &^= unix.MOUNT_ATTR_RDONLY
	}
	if err := unix.MountSetattr(root, "", unix.AT_EMPTY_PATH, attr); err != nil {
		return nil, stepError("mounts", "remount root read-only", "/", err)
	}
	return detached, nil
}

// donated returns the descriptor at index i of fds, if there is one.
func donated(i int, fds []int) (int, bool) {
	if i < 0 || i >= len(fds) {
		return -1, false
	}
	return fds[i], true
}

func mountOne(root int, m MountPlan, fds []int) error {
	if m.Type == "bind" {
		if m.SrcFD < 0 || m.SrcFD >= len(fds) {
			return errors.New("bind mount without a donated source")
		}
		src := fds[m.SrcFD]
		dir, err := isDirFD(src)
		if err != nil {
			return err
		}
		target, err := targetInRoot(root, m.Dest, dir)
		if err != nil {
			return err
		}
		defer unix.Close(target)
		if err := unix.MoveMount(src, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
			return err
		}
		if err := makePrivate(src); err != nil {
			return fmt.Errorf("make rprivate: %w", err)
		}
		if err := renumber(src, target); err != nil {
			return err
		}
		if m.Devices {
			return devLinks(root)
		}
		return nil
	}
	target, err := mkdirInRoot(root, m.Dest)
	if err != nil {
		return err
	}
	defer unix.Close(target)
	if err := mountOn(target, m.Source, m.Type, m.Flags&^(unix.MS_BIND|unix.MS_REC), m.Data); err != nil {
		return err
	}
	if m.Dest == "/dev" {
		return populateDev(root)
	}
	return nil
}

// makePrivate makes the attached mount tree at fd private. A clone (open_tree) of a mount on a
// shared host mount joins the host's peer group: Docker's vfs rootfs sits under its data root,
// which dockerd makes rshared. pivot_root refuses a shared new root (EINVAL), and worse, /proc,
// /dev and the masks mounted inside it would propagate back to the host's peers of that mount.
// Making "/" rprivate before the attach does not help: the clone brings its own peer group.
func makePrivate(fd int) error {
	attr := &unix.MountAttr{Propagation: unix.MS_PRIVATE}
	return unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr)
}

// renumber replaces the attached mount at fd with a fresh clone of itself. /proc/self/mountinfo
// lists mounts by id, and the parent made the donated tree before every other mount: the clone
// gets an id in setup order, so the container sees its mounts in the spec's order (runtime-tools
// checks it). Cosmetic, so a kernel that refuses the clone keeps the original. The original is
// parked (see park), or unmounted where it cannot be, which waits for an RCU grace period.
func renumber(fd, target int) error {
	clone, err := unix.OpenTree(fd, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH|unix.AT_RECURSIVE)
	if err != nil {
		return nil
	}
	defer unix.Close(clone)
	if park(fd) != nil && unix.Unmount(fdPath(fd), unix.MNT_DETACH) != nil {
		return nil
	}
	if err := unix.MoveMount(clone, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("re-attach clone: %w", err)
	}
	return nil
}

func targetInRoot(root int, p string, dir bool) (int, error) {
	if dir {
		return mkdirInRoot(root, p)
	}
	return fileInRoot(root, p)
}

// populateDev fills a /dev tmpfs the child mounted itself (where the runtime could not make it,
// see sandbox.devTmpfs): mknod is impossible in a user namespace, so the minimal device set is
// bind-mounted from the host, and the rest are symlinks.
func populateDev(root int) error {
	dev, err := openInRoot(root, "/dev", unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer unix.Close(dev)
	for _, d := range MinimalDevices {
		if err := bindDevice(root, dev, d); err != nil {
			return err
		}
	}
	return devSymlinks(dev)
}

// devLinks adds the links to the runtime's /dev, which holds the device nodes already.
func devLinks(root int) error {
	dev, err := openInRoot(root, "/dev", unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer unix.Close(dev)
	return devSymlinks(dev)
}

// devSymlinks makes /dev's usual symlinks in dev.
func devSymlinks(dev int) error {
	links := [][2]string{
		{"pts/ptmx", "ptmx"}, {"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"},
		{"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}, {"/proc/kcore", "core"},
	}
	for _, l := range links {
		if err := unix.Symlinkat(l[0], dev, l[1]); err != nil && err != unix.EEXIST {
			return fmt.Errorf("symlink /dev/%s: %w", l[1], err)
		}
	}
	return nil
}

// bindDevice clones the host's /dev/<name> and attaches it, nosuid and noexec, over an empty file
// made in the container's /dev (dev). The tmpfs there was just mounted, so the name is created
// directly in it; only a name already there is resolved again inside the root.
func bindDevice(root, dev int, name string) error {
	clone, err := unix.OpenTree(unix.AT_FDCWD, "/dev/"+name, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("clone /dev/%s: %w", name, err)
	}
	defer unix.Close(clone)
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NOEXEC}
	if err := unix.MountSetattr(clone, "", unix.AT_EMPTY_PATH, attr); err != nil {
		return fmt.Errorf("mount_setattr /dev/%s: %w", name, err)
	}
	target, err := unix.Openat(dev, name, unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_RDONLY|unix.O_CLOEXEC, 0o644)
	if err == unix.EEXIST {
		target, err = fileInRoot(root, "/dev/"+name)
	}
	if err != nil {
		return fmt.Errorf("/dev/%s: %w", name, err)
	}
	defer unix.Close(target)
	if err := unix.MoveMount(clone, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("bind /dev/%s: %w", name, err)
	}
	return nil
}

// generatedMounts attaches each generated file over its destination, read-only: the runtime's
// shared copy it donated (read-only already, see donateGenerated), or one written into the
// staging tmpfs.
func generatedMounts(root int, st *staging, files []FilePlan, fds []int) error {
	for _, f := range files {
		if f.SrcFD < 0 {
			clone, err := st.file(f.Content)
			if err != nil {
				return fmt.Errorf("%s: %w", f.Dest, err)
			}
			err = attachReadonly(root, clone, f.Dest)
			unix.Close(clone)
			if err != nil {
				return err
			}
			continue
		}
		if f.SrcFD >= len(fds) {
			return fmt.Errorf("%s: no file was donated", f.Dest)
		}
		target, err := fileInRoot(root, f.Dest)
		if err != nil {
			return err
		}
		err = moveOnto(fds[f.SrcFD], target)
		unix.Close(target)
		if err != nil {
			return fmt.Errorf("%s: %w", f.Dest, err)
		}
	}
	return nil
}

func writeSysctl(root int, key, value string) error {
	p := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	fd, err := openInRoot(root, p, unix.O_WRONLY)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	_, err = unix.Write(fd, []byte(value))
	return err
}

// maskPath hides p: an empty directory, read-only, over a directory (the same one for every
// masked directory: the runtime's shared one, or the staging tmpfs's), /dev/null over anything
// else. A path the kernel does not have is already hidden.
func maskPath(root int, st *staging, p string) error {
	target, err := openInRoot(root, p, unix.O_PATH)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(target)
	dir, err := isDirFD(target)
	if err != nil {
		return err
	}
	if dir {
		clone, err := st.emptyDir()
		if err != nil {
			return err
		}
		defer unix.Close(clone)
		if err := readonlyMount(clone); err != nil {
			return err
		}
		return moveOnto(clone, target)
	}
	null, err := openInRoot(root, "/dev/null", unix.O_PATH)
	if err != nil {
		return err
	}
	defer unix.Close(null)
	// A bind made from descriptors: see mountOn for why not mount(2) on /proc/self/fd links.
	clone, err := unix.OpenTree(null, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("clone /dev/null: %w", err)
	}
	defer unix.Close(clone)
	return moveOnto(clone, target)
}

// readonlyPath covers p with a read-only clone of itself.
func readonlyPath(root int, p string) error {
	target, err := openInRoot(root, p, unix.O_PATH)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(target)
	clone, err := unix.OpenTree(target, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE|unix.AT_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("clone: %w", err)
	}
	defer unix.Close(clone)
	if err := readonlyMount(clone); err != nil {
		return err
	}
	return moveOnto(clone, target)
}

// parkingPath is where mounts the container must not keep are left before pivot_root: the host's
// /tmp of this private mount namespace (made rprivate first), which pivot_root leaves behind and
// detaches with the rest of the host's tree. Every mount parked there goes in that one detach,
// in one RCU grace period; unmounting or dissolving each apart waits for one of its own (0.1 ms).
const parkingPath = "/tmp"

// park moves the mount at fd (attached or detached) onto parkingPath. Before pivot_root only.
func park(fd int) error {
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, parkingPath, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount onto %s: %w", parkingPath, err)
	}
	return nil
}

// pivot makes the rootfs the root with pivot_root (never chroot: a chroot leaves the host tree
// reachable) and starts detaching the old root, which pivot_root(".", ".") stacks on top of the new
// one. The detach waits for an RCU grace period (~0.1 ms here) before it returns, so it runs on a
// thread of its own while this one goes on; nothing this thread resolves reaches the stacked old
// root meanwhile (a path walk starts at the new root and never crosses a mount on its starting
// point, and the root is remounted through its descriptor). The returned wait reports the
// detach; it must return nil before anything of the container runs.
func pivot(root int) (wait func() error, err error) {
	// The old root, for the detaching thread: after pivot_root it is reachable only as the mount
	// on top of the new root. Opened as runc does, before the pivot.
	old, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open old root: %w", err)
	}
	if err := unix.Fchdir(root); err != nil {
		unix.Close(old)
		return nil, fmt.Errorf("fchdir rootfs: %w", err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		unix.Close(old)
		return nil, fmt.Errorf("pivot_root: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- detach(old) }()
	return func() error { return <-done }, unix.Chdir("/")
}

// detach unmounts (MNT_DETACH) the tree whose root directory old is, and closes old. It gives its
// thread a working directory of its own (unshare(CLONE_FS)) and so never gives the thread back:
// the goroutine stays locked to it, and the thread ends with it.
func detach(old int) error {
	runtime.LockOSThread()
	defer unix.Close(old)
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("detach old root: unshare(CLONE_FS): %w", err)
	}
	if err := unix.Fchdir(old); err != nil {
		return fmt.Errorf("detach old root: fchdir: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	return nil
}

// MinimalDevices are the device nodes of a container's /dev: made by the runtime in the /dev it
// donates, or bind-mounted from the host's /dev where the child mounts /dev itself (mknod is
// impossible in a user namespace).
var MinimalDevices = []string{"null", "zero", "full", "random", "urandom", "tty"}
