package setup

import (
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"
)

// Child side: the container's one private tmpfs for what the floor mounts read-only from memory
// (issue 14): the empty directory every masked directory is covered with, the skeleton of
// directories a v1 or hybrid host's cgroup views are mounted on, and the generated /etc files
// the runtime does not share (donateGenerated). Each is a read-only clone of a piece of it, so a
// container has one superblock for all of them instead of one per masked directory, one for its
// cgroup views and one for its files: every superblock costs host memory (its struct, root
// inode, shrinker and per-memory-cgroup lists, and a shrinker slot in every memory cgroup of
// the host) for as long as the container lives. The runtime donates its own shared empty
// directory and cgroup skeleton where its state root can hold them (sandbox/shareddirs.go): the
// staging tmpfs is then made only for what else needs it, if anything.
//
// The tmpfs is made detached (fsopen/fsmount) and never appears in the container's tree: the
// pieces are reachable only through their read-only clones. Once every piece is made (at once on
// a kernel that cannot clone from a detached mount) it is parked (see park) for pivot_root to
// detach with the host's tree: dissolving it apart, when its last descriptor closed, waited for
// an RCU grace period of its own.

// stagingSize bounds the staging tmpfs: a few directories and three short files.
const stagingSize = "64k"

// staging is the container's staging tmpfs; the zero value has none yet (made on first use).
type staging struct {
	fd       int
	attached bool
	// next numbers the pieces made in it.
	next int
	// empty is the name of the empty directory masks share, once made.
	empty string
	// emptyFD and skelFD are the runtime's donated clones of its shared empty directory and
	// cgroup skeleton (see Config.MaskDirFD), or -1: they are then made here. Each is parked
	// (see park) if the kernel cannot clone it detached; parked says which were.
	emptyFD, skelFD int
	parked          map[int]bool
}

func newStaging() *staging { return &staging{fd: -1, emptyFD: -1, skelFD: -1} }

// mount returns the staging tmpfs's mount, making it on first use.
func (s *staging) mount() (int, error) {
	if s.fd >= 0 {
		return s.fd, nil
	}
	fs, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsopen tmpfs: %w", err)
	}
	defer unix.Close(fs)
	if err := unix.FsconfigSetString(fs, "source", "tmpfs"); err != nil {
		return -1, fmt.Errorf("staging tmpfs source: %w", err)
	}
	if err := unix.FsconfigSetString(fs, "size", stagingSize); err != nil {
		return -1, fmt.Errorf("staging tmpfs size: %w", err)
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return -1, fmt.Errorf("create staging tmpfs: %w", err)
	}
	mfd, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsmount staging tmpfs: %w", err)
	}
	s.fd = mfd
	return mfd, nil
}

// finish makes the staging tmpfs read-only as a whole (its superblock, not only the clones) once
// every piece is made, and leaves it attached on the host's /tmp for pivot_root to detach. It
// must run before pivot_root.
func (s *staging) finish() error {
	if s.fd >= 0 {
		fs, err := unix.Fspick(s.fd, "", unix.FSPICK_EMPTY_PATH|unix.FSPICK_CLOEXEC)
		if err != nil {
			return fmt.Errorf("fspick staging tmpfs: %w", err)
		}
		defer unix.Close(fs)
		if err := unix.FsconfigSetFlag(fs, "ro"); err != nil {
			return fmt.Errorf("staging tmpfs ro: %w", err)
		}
		if err := unix.FsconfigReconfigure(fs); err != nil {
			return fmt.Errorf("make the staging tmpfs read-only: %w", err)
		}
		if !s.attached {
			s.attach() //nolint:errcheck // left detached, its close below dissolves it
		}
		unix.Close(s.fd)
	}
	s.fd, s.attached = -1, false
	return nil
}

// close releases the staging tmpfs's descriptor where setup failed before finish: the child then
// exits, and its mount namespace, with whatever was attached in it, goes with it.
func (s *staging) close() {
	if s.fd >= 0 {
		unix.Close(s.fd)
	}
	s.fd, s.attached = -1, false
}

// attach parks the staging tmpfs (see park).
func (s *staging) attach() error {
	if err := park(s.fd); err != nil {
		return fmt.Errorf("attach staging tmpfs: %w", err)
	}
	s.attached = true
	return nil
}

// name returns a fresh name for a piece.
func (s *staging) name() string {
	s.next++
	return strconv.Itoa(s.next - 1)
}

// clone returns a detached clone of the piece name (not recursive: mounts made on a piece after
// it was attached stay where they are).
func (s *staging) clone(name string) (int, error) {
	clone, err := unix.OpenTree(s.fd, name, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err == unix.EINVAL && !s.attached {
		if err := s.attach(); err != nil {
			return -1, err
		}
		clone, err = unix.OpenTree(s.fd, name, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	}
	if err != nil {
		return -1, fmt.Errorf("clone staging piece %s: %w", name, err)
	}
	return clone, nil
}

// file returns a detached clone of a new file holding content.
func (s *staging) file(content string) (int, error) {
	dir, err := s.mount()
	if err != nil {
		return -1, err
	}
	name := s.name()
	fd, err := unix.Openat(dir, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return -1, fmt.Errorf("create staging %s: %w", name, err)
	}
	_, err = unix.Write(fd, []byte(content))
	unix.Close(fd)
	if err != nil {
		return -1, fmt.Errorf("write staging %s: %w", name, err)
	}
	return s.clone(name)
}

// dir returns a detached clone of a new directory (mode) holding the empty directories subdirs.
func (s *staging) dir(mode uint32, subdirs ...string) (int, error) {
	dir, err := s.mount()
	if err != nil {
		return -1, err
	}
	name := s.name()
	if err := unix.Mkdirat(dir, name, mode); err != nil {
		return -1, fmt.Errorf("mkdir staging %s: %w", name, err)
	}
	// The umask must not narrow the mode asked for.
	if err := unix.Fchmodat(dir, name, mode, 0); err != nil {
		return -1, fmt.Errorf("chmod staging %s: %w", name, err)
	}
	for _, sub := range subdirs {
		if err := unix.Mkdirat(dir, name+"/"+sub, 0o755); err != nil {
			return -1, fmt.Errorf("mkdir staging %s/%s: %w", name, sub, err)
		}
	}
	return s.clone(name)
}

// emptyDir returns a detached clone of the empty directory (mode 0555) masks share.
func (s *staging) emptyDir() (int, error) {
	if s.emptyFD >= 0 {
		return s.cloneDonated(s.emptyFD)
	}
	if s.empty != "" {
		return s.clone(s.empty)
	}
	clone, err := s.dir(0o555)
	if err == nil {
		s.empty = strconv.Itoa(s.next - 1)
	}
	return clone, err
}

// skeleton returns a detached clone of a directory (mode 0755) holding an empty directory of
// each of names: the cgroup views' mountpoints.
func (s *staging) skeleton(names []string) (int, error) {
	if s.skelFD >= 0 {
		return s.cloneDonated(s.skelFD)
	}
	return s.dir(0o755, names...)
}

// cloneDonated returns a detached clone of the donated tree fd rather than the tree itself, which
// the runtime made before every other mount: the clone's mount id, and its place in mountinfo,
// follow the setup's order (see renumber). A kernel that cannot clone a detached tree gets it
// parked first.
func (s *staging) cloneDonated(fd int) (int, error) {
	clone, err := unix.OpenTree(fd, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	if err == unix.EINVAL && !s.parked[fd] {
		if err := park(fd); err != nil {
			return -1, err
		}
		if s.parked == nil {
			s.parked = map[int]bool{}
		}
		s.parked[fd] = true
		clone, err = unix.OpenTree(fd, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	}
	if err != nil {
		return -1, fmt.Errorf("clone donated tree: %w", err)
	}
	return clone, nil
}

// attachReadonly makes clone read-only, nosuid, nodev and noexec and attaches it at dest inside
// root (a file or directory made there if missing).
func attachReadonly(root, clone int, dest string) error {
	if err := readonlyMount(clone); err != nil {
		return fmt.Errorf("%s: %w", dest, err)
	}
	dir, err := isDirFD(clone)
	if err != nil {
		return err
	}
	target, err := targetInRoot(root, dest, dir)
	if err != nil {
		return err
	}
	defer unix.Close(target)
	if err := moveOnto(clone, target); err != nil {
		return fmt.Errorf("%s: %w", dest, err)
	}
	return nil
}

// readonlyMount makes the mount tree at fd read-only, nosuid, nodev and noexec.
func readonlyMount(fd int) error {
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr); err != nil {
		return fmt.Errorf("mount_setattr: %w", err)
	}
	return nil
}

// moveOnto attaches the detached mount clone on the file or directory target.
func moveOnto(clone, target int) error {
	if err := unix.MoveMount(clone, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount: %w", err)
	}
	return nil
}
