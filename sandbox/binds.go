package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/openat2"
	"bulwark.dev/bulwark/sandbox/internal/idmap"
)

// A bind mount's source is a host path, and a path is walked again each time it is used: a
// caller that decides on one walk and mounts from another can be raced (swap a directory
// component for a symlink to / in between, and host /etc is mounted where a harmless directory
// was allowed). So each source is resolved once, into an O_PATH descriptor; the request document,
// the audit record and the mount are all made from that descriptor:
//
//	ResolveBinds(spec) → openat2(src, O_PATH, RESOLVE_NO_MAGICLINKS) per bind source
//	  → the spec's source becomes readlink(/proc/self/fd/N) (what the descriptor really is)
//	  → the caller decides on that spec → CreateResolved mounts open_tree(N, "", AT_EMPTY_PATH)

// BindSources are a spec's bind-mount sources, each resolved once into a descriptor, keyed by
// the real path the spec now names. The owner closes them (Close) once the container is created
// or the request is refused.
type BindSources struct {
	fds map[string]int // real path → O_PATH descriptor
	// ns are the namespaces the spec names by path, opened once; joined is what the floor
	// last decided on them (see the pod model in nsjoin.go).
	ns     map[specs.LinuxNamespaceType]*nsSource
	joined *joined
}

// ResolveBinds resolves every bind source of spec (a relative one against bundle) into a
// descriptor and returns a copy of spec whose bind sources are those descriptors' real paths, so
// whatever is decided on the copy is what CreateResolved mounts. A source that does not exist,
// or that reaches a magic link (/proc/<pid>/root, /proc/self/fd/N), is refused.
func ResolveBinds(spec *specs.Spec, bundle string) (*specs.Spec, *BindSources, error) {
	return resolveBinds(spec, bundle, nil)
}

// ResolveBindsPlanned is ResolveBinds for a decision only (a dry run): a source named in planned
// that does not exist yet (a volume the run would make) is named by the path it would have, the
// real path of its nearest existing ancestor joined with the rest, and gets no descriptor, so
// nothing can be mounted from the result (CreateResolved refuses a source not resolved).
func ResolveBindsPlanned(spec *specs.Spec, bundle string, planned []string) (*specs.Spec, *BindSources, error) {
	return resolveBinds(spec, bundle, planned)
}

func resolveBinds(spec *specs.Spec, bundle string, planned []string) (*specs.Spec, *BindSources, error) {
	if spec == nil {
		return nil, nil, floorErr("no spec")
	}
	out := *spec
	out.Mounts = append([]specs.Mount(nil), spec.Mounts...)
	b := &BindSources{fds: map[string]int{}}
	for i, m := range out.Mounts {
		if !isBind(m) {
			continue
		}
		src := m.Source
		if !filepath.IsAbs(src) {
			src = filepath.Join(bundle, src)
		}
		real, err := b.open(src)
		if errors.Is(err, unix.ENOENT) && slices.Contains(planned, src) {
			real, err = plannedPath(src)
		}
		if err != nil {
			b.Close()
			return nil, nil, fmt.Errorf("bind mount %s → %s: %w", m.Source, m.Destination, err)
		}
		out.Mounts[i].Source = real
	}
	if err := b.openNamespaces(spec); err != nil {
		b.Close()
		return nil, nil, err
	}
	return &out, b, nil
}

// open resolves src once and keeps the descriptor under its real path.
func (b *BindSources) open(src string) (string, error) {
	fd, err := openat2.Open(unix.AT_FDCWD, src, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return "", fmt.Errorf("resolve source %s: %w", src, err)
	}
	real, err := os.Readlink(fdPath(fd))
	if err != nil {
		unix.Close(fd)
		return "", fmt.Errorf("real path of source %s: %w", src, err)
	}
	if !filepath.IsAbs(real) {
		// Outside this mount namespace's root, or not a path at all ("anon_inode:…").
		unix.Close(fd)
		return "", fmt.Errorf("source %s resolves to %q, not a host path", src, real)
	}
	if old, ok := b.fds[real]; ok {
		unix.Close(old) // two binds of one source: either descriptor is the same file
	}
	b.fds[real] = fd
	return real, nil
}

// plannedPath is the real path src would have once made: that of its nearest existing ancestor
// (resolved as a source is) joined with the rest.
func plannedPath(src string) (string, error) {
	rest := ""
	for dir := filepath.Clean(src); dir != "/"; {
		rest = filepath.Join(filepath.Base(dir), rest)
		dir = filepath.Dir(dir)
		fd, err := openat2.Open(unix.AT_FDCWD, dir, &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_NO_MAGICLINKS,
		})
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("resolve source %s: %w", src, err)
		}
		real, err := os.Readlink(fdPath(fd))
		unix.Close(fd)
		if err != nil || !filepath.IsAbs(real) {
			return "", fmt.Errorf("real path of source %s: %q: %v", src, real, err)
		}
		return filepath.Join(real, rest), nil
	}
	return "", fmt.Errorf("resolve source %s: no ancestor exists", src)
}

// fd returns the descriptor a bind whose (resolved) source is real mounts from.
func (b *BindSources) fd(real string) (int, error) {
	fd, ok := b.fds[real]
	if !ok {
		return -1, fmt.Errorf("bind source %s was not resolved before the decision", real)
	}
	return fd, nil
}

// Close releases the descriptors (safe on nil, and to call again).
func (b *BindSources) Close() error {
	if b == nil {
		return nil
	}
	var errs []error
	for real, fd := range b.fds {
		if err := unix.Close(fd); err != nil {
			errs = append(errs, fmt.Errorf("close bind source %s: %w", real, err))
		}
		delete(b.fds, real)
	}
	for t, s := range b.ns {
		s.close()
		delete(b.ns, t)
	}
	b.joined.close()
	b.joined = nil
	return errors.Join(errs...)
}

// Export hands the descriptors to another process (a detached run's monitor): the real paths and
// a duplicate of each descriptor, in one order. The caller closes the files once they are passed.
func (b *BindSources) Export() ([]string, []*os.File, error) {
	if len(b.ns) > 0 {
		return nil, nil, errors.New("export bind sources: namespaces to join do not travel to another process")
	}
	paths := make([]string, 0, len(b.fds))
	for real := range b.fds {
		paths = append(paths, real)
	}
	slices.Sort(paths)
	files := make([]*os.File, 0, len(paths))
	for _, real := range paths {
		fd, err := unix.FcntlInt(uintptr(b.fds[real]), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return nil, nil, fmt.Errorf("duplicate bind source %s: %w", real, err)
		}
		files = append(files, os.NewFile(uintptr(fd), real))
	}
	return paths, files, nil
}

// ImportBinds adopts the descriptors another process exported (Export): files[i] is paths[i].
// The files are taken over (closed here or by the result's Close).
func ImportBinds(paths []string, files []*os.File) (*BindSources, error) {
	b := &BindSources{fds: map[string]int{}}
	if len(paths) != len(files) {
		for _, f := range files {
			f.Close()
		}
		return nil, fmt.Errorf("import bind sources: %d paths for %d descriptors", len(paths), len(files))
	}
	var errs []error
	for i, f := range files {
		fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		f.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("import bind source %s: %w", paths[i], err))
			continue
		}
		b.fds[paths[i]] = fd
	}
	if len(errs) > 0 {
		b.Close()
		return nil, errors.Join(errs...)
	}
	return b, nil
}

// StorageIDBase is the host id container id 0 is stored as in volumes and writable binds (an
// idmapped mount shifts it to the running container's root): a writable host bind's directory
// must belong to StorageIDBase+N for container user N to write it.
const StorageIDBase = idmap.StorageBase

// StorageIDRange is how many ids the storage range has (one container range's worth): host ids
// StorageIDBase to StorageIDBase+StorageIDRange-1.
const StorageIDRange = idmap.RangeSize

// Descriptor is the O_PATH descriptor the bind whose resolved source is real mounts from (owned
// by b: the caller must not close it).
func (b *BindSources) Descriptor(real string) (int, error) { return b.fd(real) }

// fdPath names descriptor fd through the calling process's /proc/self/fd.
func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }
