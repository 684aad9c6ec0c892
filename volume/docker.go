package volume

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/sandbox"
)

// Docker named volumes under bulwark-runc. dockerd keeps a named volume at
// <data-root>/volumes/NAME/_data and binds that directory into the container; it makes it owned
// by host root (or, when it copies the image's content there first, by the image's own ids, as
// they are on the host without userns-remap). The floor idmaps every writable bind to the
// storage range (container id N is host id sandbox.StorageIDBase+N), so such a directory is not
// writable by the container. Adoption moves it into the storage range once: every id N below
// the range size becomes StorageIDBase+N, exactly the shift a fresh bulwark volume gets when it
// is filled from an image. The top directory is changed last, so its owner says whether a
// volume is adopted (a walk killed half way is finished by the next run).
//
// Every step works on descriptors: the directory is the one the bind resolved to (the
// descriptor policy decided on), each entry is looked at with fstatat(AT_SYMLINK_NOFOLLOW) and
// changed with fchownat(AT_SYMLINK_NOFOLLOW) relative to its parent's descriptor, and a
// subdirectory is opened O_NOFOLLOW and checked to be the entry that was looked at. Nothing is
// followed out of the volume; a mount point inside it, an id that is neither an image id nor
// the storage range's, and a file with other hard links (its other names could be anywhere on
// the filesystem) refuse the adoption.

// DockerState is what a Docker named volume's _data directory holds, as policy sees it.
type DockerState string

const (
	// DockerEmpty is a directory with no entries, not yet in the storage range: adopting it
	// changes only its owner.
	DockerEmpty DockerState = "empty"
	// DockerFilled holds entries (dockerd copied the image's content there, or another runtime
	// wrote it): adopting it shifts the whole tree, which policy must grant.
	DockerFilled DockerState = "filled"
	// DockerAdopted is already owned by the storage range.
	DockerAdopted DockerState = "adopted"
)

// adoptLimits bound the walk of a filled volume.
const (
	adoptMaxDepth   = 256
	adoptMaxEntries = 1 << 20
)

// DockerVolumeName returns NAME when path is exactly root/volumes/NAME/_data for a valid volume
// name (both paths real: resolved, clean, absolute).
func DockerVolumeName(root, path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, strings.TrimRight(root, "/")+"/volumes/")
	if !ok {
		return "", false
	}
	name, data, ok := strings.Cut(rest, "/")
	if !ok || data != "_data" || !ValidName(name) {
		return "", false
	}
	return name, true
}

// InspectDocker says what the directory fd refers to (an O_PATH or open descriptor) holds.
func InspectDocker(fd int) (DockerState, error) {
	dir, err := reopenDir(fd)
	if err != nil {
		return "", err
	}
	defer unix.Close(dir)
	return inspectTop(dir)
}

// Adoption is what AdoptDocker changed.
type Adoption struct {
	// From is the state the volume was in (DockerAdopted: nothing changed).
	From DockerState
	// Changed is how many entries (the directory included) were given storage-range owners.
	Changed int
}

// AdoptDocker moves the _data directory fd refers to into the storage range. A filled volume is
// adopted only with tree (policy granted it); an empty one, or one already adopted, needs no
// grant. The state is read again here: a volume decided on as empty that has been filled since
// is refused without tree.
func AdoptDocker(fd int, tree bool) (Adoption, error) {
	dir, err := reopenDir(fd)
	if err != nil {
		return Adoption{}, err
	}
	defer unix.Close(dir)
	st, err := inspectTop(dir)
	if err != nil {
		return Adoption{}, err
	}
	a := Adoption{From: st}
	switch {
	case st == DockerAdopted:
		return a, nil
	case st == DockerFilled && !tree:
		return a, errors.New("the volume holds files and policy did not grant adopting them (adopt_docker_volume_contents)")
	}
	w := &adoptWalk{}
	if st == DockerFilled {
		var top unix.Stat_t
		if err := unix.Fstat(dir, &top); err != nil {
			return a, fmt.Errorf("volume directory: %w", err)
		}
		w.dev = top.Dev
		if err := w.walk(dir, ".", 0); err != nil {
			return a, err
		}
	}
	if err := w.chown(dir, "", "."); err != nil {
		return a, err
	}
	a.Changed = w.changed
	return a, nil
}

// reopenDir opens the directory an O_PATH descriptor refers to for reading, never following a
// symlink (the descriptor itself is the directory).
func reopenDir(fd int) (int, error) {
	dir, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open volume directory: %w", err)
	}
	return dir, nil
}

// inspectTop classifies the open directory dir by its owner and whether it has entries.
func inspectTop(dir int) (DockerState, error) {
	var st unix.Stat_t
	if err := unix.Fstat(dir, &st); err != nil {
		return "", fmt.Errorf("volume directory: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return "", errors.New("volume data is not a directory")
	}
	if inStorage(st.Uid) && inStorage(st.Gid) {
		return DockerAdopted, nil
	}
	if _, _, err := shifted(st.Uid, st.Gid, "."); err != nil {
		return "", err
	}
	names, err := readNames(dir, 1)
	if err != nil {
		return "", err
	}
	if len(names) == 0 {
		return DockerEmpty, nil
	}
	return DockerFilled, nil
}

func inStorage(id uint32) bool {
	return id >= sandbox.StorageIDBase && id-sandbox.StorageIDBase < sandbox.StorageIDRange
}

// shifted returns the storage-range owner of an entry owned by uid:gid: an image id N (below
// the range size) becomes StorageIDBase+N, a storage-range id stays. Any other id (a tenant's
// range, a host user's high id) is refused: it is not an id a container image has.
func shifted(uid, gid uint32, where string) (uint32, uint32, error) {
	shift := func(id uint32, what string) (uint32, error) {
		switch {
		case inStorage(id):
			return id, nil
		case id < sandbox.StorageIDRange:
			return sandbox.StorageIDBase + id, nil
		}
		return 0, fmt.Errorf("%s is owned by %s %d, neither an image id (below %d) nor the storage range's: refusing to adopt it", where, what, id, sandbox.StorageIDRange)
	}
	u, err := shift(uid, "uid")
	if err != nil {
		return 0, 0, err
	}
	g, err := shift(gid, "gid")
	return u, g, err
}

// readNames returns up to max entry names of the open directory dir (max <= 0: all), read
// through a descriptor of its own so dir's offset does not move.
func readNames(dir, max int) ([]string, error) {
	dup, err := unix.Openat(dir, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("read volume directory: %w", err)
	}
	f := os.NewFile(uintptr(dup), "volume")
	defer f.Close()
	names, err := f.Readdirnames(max)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read volume directory: %w", err)
	}
	return names, nil
}

// adoptWalk shifts a filled volume's entries below the top directory.
type adoptWalk struct {
	dev     uint64
	entries int
	changed int
}

// walk shifts every entry of the open directory dir (at where, relative to the volume), children
// before the directory that holds them.
func (w *adoptWalk) walk(dir int, where string, depth int) error {
	if depth >= adoptMaxDepth {
		return fmt.Errorf("%s: deeper than %d directories: refusing to adopt", where, adoptMaxDepth)
	}
	names, err := readNames(dir, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	for _, name := range names {
		if w.entries++; w.entries > adoptMaxEntries {
			return fmt.Errorf("more than %d entries: refusing to adopt", adoptMaxEntries)
		}
		path := filepath.Join(where, name)
		var st unix.Stat_t
		if err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if st.Dev != w.dev {
			return fmt.Errorf("%s is another filesystem mounted in the volume: refusing to adopt", path)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			if st.Nlink > 1 {
				return fmt.Errorf("%s has %d hard links, whose other names may be outside the volume: refusing to adopt", path, st.Nlink)
			}
			if err := w.chown(dir, name, path); err != nil {
				return err
			}
			continue
		}
		sub, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		var got unix.Stat_t
		err = unix.Fstat(sub, &got)
		if err == nil && (got.Dev != st.Dev || got.Ino != st.Ino) {
			err = errors.New("replaced while the volume was adopted")
		}
		if err == nil {
			err = w.walk(sub, path, depth+1)
		}
		if err == nil {
			err = w.chown(sub, "", path)
		}
		unix.Close(sub)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	return nil
}

// chown gives the entry name of dir (empty: dir itself) its storage-range owner, never following
// a symlink. The kernel clears setuid and setgid bits as the owner changes.
func (w *adoptWalk) chown(dir int, name, where string) error {
	flags := unix.AT_SYMLINK_NOFOLLOW
	if name == "" {
		flags |= unix.AT_EMPTY_PATH
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dir, name, &st, flags); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	uid, gid, err := shifted(st.Uid, st.Gid, where)
	if err != nil {
		return err
	}
	if uid == st.Uid && gid == st.Gid {
		return nil
	}
	if err := unix.Fchownat(dir, name, int(uid), int(gid), flags); err != nil {
		return fmt.Errorf("adopt %s: %w", where, err)
	}
	w.changed++
	return nil
}
