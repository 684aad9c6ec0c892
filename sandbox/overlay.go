package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/openat2"
	"bulwark.dev/bulwark/sandbox/internal/idmap"
	"bulwark.dev/bulwark/sandbox/setup"
)

// An overlay rootfs (containerd's default overlayfs snapshotter mounts one at <bundle>/rootfs)
// cannot itself be idmapped (mount_setattr answers EINVAL), but an overlay whose layers are
// idmapped mounts works. So the parent rebuilds the caller's overlay from idmapped mounts of its
// layer directories and donates that as the rootfs:
//
//	statfs(rootfs) == overlay → layer dirs from mountinfo (upperdir, then each lowerdir)
//	→ one detached idmapped mount per layer → fsopen(overlay) with the layers as lowerdir+
//	  descriptors (the caller's upper becomes the top lower: the floor makes the root read-only
//	  anyway) and a small private tmpfs upper → detached overlay mount = the rootfs
//
// The parent, not the child, mounts it: an overlay mounted in the container's user namespace
// cannot read the trusted.overlay.* xattrs the snapshotter wrote (opaque directories), so
// directories an image layer replaced would show the lower layers' files again.

// The same overlay serves a caller that hands over an image's unpacked layers directly
// (CreateFromLayers, as bulwark run does): an image exists once on disk, its layers are shared
// read-only by every container, and per container there is only the small tmpfs upper holding
// the mountpoints the runtime creates — no copy of the image, nothing that grows with its files.

// CreateFromLayers is CreateContext with a root filesystem made of read-only layer directories
// (topmost first, as overlayfs' lowerdir lists them; an unpacked image): each is resolved once,
// idmapped into the container's range and stacked into an overlay as above. spec.Root.Path is
// not read (it only names the root in the spec the caller records).
func (r *Runtime) CreateFromLayers(ctx context.Context, id, bundle string, spec *specs.Spec, layers []string, binds *BindSources, stdio IO) (*Container, error) {
	if len(layers) == 0 {
		return nil, errors.New("rootfs of no layers")
	}
	return r.create(ctx, id, bundle, spec, layers, -1, binds, nil, stdio)
}

// CreateFromLayersWritable is CreateFromLayers for a writable root (Options.WritableRoot and
// root.readonly false): upper is a detached mount of an empty filesystem, or of the one an
// earlier run of this container wrote, which the caller sized (the overlay's upper layer gets
// what the workload writes, a write past the size fails with ENOSPC). The overlay is nosuid and
// nodev like any root, and executes what the workload wrote there: that is what the grant gives
// up. The caller keeps upper (the overlay holds its own reference).
func (r *Runtime) CreateFromLayersWritable(ctx context.Context, id, bundle string, spec *specs.Spec, layers []string, upper *os.File, binds *BindSources, stdio IO) (*Container, error) {
	if len(layers) == 0 {
		return nil, errors.New("rootfs of no layers")
	}
	if upper == nil {
		return nil, errors.New("writable root without an upper layer")
	}
	return r.create(ctx, id, bundle, spec, layers, int(upper.Fd()), binds, nil, stdio)
}

// CreateFlooredFromLayers is CreateFloored with the root made of layers, as CreateFromLayers
// makes it, over upper when it is not nil (CreateFromLayersWritable): the container gets exactly
// res, the result policy decided on, not a second floor of its spec. The caller has recorded
// res's raises with its decision (the engine's floor.raises record): the create record counts
// them, and only a raise create itself adds gets a record of its own.
func (r *Runtime) CreateFlooredFromLayers(ctx context.Context, id, bundle string, res *FloorResult, layers []string, upper *os.File, stdio IO) (*Container, error) {
	if len(layers) == 0 {
		return nil, errors.New("rootfs of no layers")
	}
	if err := r.checkFloored(id, res); err != nil {
		return nil, err
	}
	upperFD := -1
	if upper != nil {
		upperFD = int(upper.Fd())
	}
	recorded := *res
	recorded.raisesRecorded = true
	return r.create(ctx, id, bundle, nil, layers, upperFD, res.binds, &recorded, stdio)
}

// rootfsSource is what a container's root is made from, each directory resolved once (O_PATH):
// the rootfs directory (which may be an overlay mount a snapshotter made), or layers, topmost
// first.
type rootfsSource struct {
	fds     []int
	paths   []string // real paths, for errors and mountinfo
	layered bool
	upper   int // the caller's writable upper filesystem (CreateFromLayersWritable), or -1
}

// openRoot resolves the root the spec (or the layers) names.
func openRoot(eff *specs.Spec, bundle string, layers []string, upper int) (*rootfsSource, error) {
	// The floor kept a writable root only under the caller's grant, which comes with its upper.
	if !eff.Root.Readonly && (upper < 0 || layers == nil) {
		return nil, floorErr("a writable root needs the caller's upper layer (CreateFromLayersWritable)")
	}
	if eff.Root.Readonly && upper >= 0 {
		return nil, floorErr("an upper layer for a read-only root")
	}
	src := &rootfsSource{layered: layers != nil, upper: upper}
	dirs := layers
	if layers == nil {
		rootfs := eff.Root.Path
		if !filepath.IsAbs(rootfs) {
			rootfs = filepath.Join(bundle, rootfs)
		}
		dirs = []string{rootfs}
	}
	for _, d := range dirs {
		if !filepath.IsAbs(d) {
			src.Close()
			return nil, fmt.Errorf("rootfs layer %s is not an absolute path", d)
		}
		fd, real, err := openRootfs(d)
		if err != nil {
			src.Close()
			return nil, err
		}
		src.fds = append(src.fds, fd)
		src.paths = append(src.paths, real)
	}
	return src, nil
}

// Close closes the descriptors.
func (s *rootfsSource) Close() { setup.CloseAll(s.fds) }

func (s *rootfsSource) String() string {
	if s.layered {
		return fmt.Sprintf("overlay of %d layers (top %s)", len(s.paths), s.paths[0])
	}
	return s.paths[0]
}

// rootfsMount returns the detached, idmapped mount of the root to donate: an idmapped mount of
// the directory, or of the layers (given, or an overlay's) rebuilt into an overlay. owner is the
// host uid and gid container root maps to.
func rootfsMount(root *rootfsSource, userns int, owner [2]uint32) (int, error) {
	var fds []int
	defer func() { setup.CloseAll(fds) }() // the overlay keeps its own references
	if root.layered {
		for i, fd := range root.fds {
			m, err := idmap.IDMappedMountFD(fd, root.paths[i], userns)
			if err != nil {
				return -1, fmt.Errorf("idmapped mount of rootfs layer %s: %w", root.paths[i], err)
			}
			fds = append(fds, m)
		}
	} else {
		rootFD, rootfs := root.fds[0], root.paths[0]
		layers, err := overlayLayers(rootFD, rootfs)
		if err != nil {
			return -1, err
		}
		if layers == nil {
			fd, err := idmap.IDMappedMountFD(rootFD, rootfs, userns)
			if err != nil {
				return -1, fmt.Errorf("idmapped mount of rootfs %s: %w", rootfs, err)
			}
			return fd, nil
		}
		for _, l := range layers {
			fd, err := idmappedLayer(l, userns)
			if err != nil {
				return -1, fmt.Errorf("idmapped mount of overlay rootfs layer %s: %w", l, err)
			}
			fds = append(fds, fd)
		}
	}
	fd, err := overlayOf(fds, owner, root.upper)
	if err != nil {
		return -1, fmt.Errorf("overlay rootfs %s: %w", root, err)
	}
	return fd, nil
}

// idmappedLayer returns a detached idmapped mount of the layer directory l. Docker's overlay2
// names lower layers by the short links of <data-root>/overlay2/l/ (l/ABC → ../<id>/diff, to keep
// the mount options short), which the idmapped clone refuses as "not a directory": such a link is
// followed only beneath the overlay2 directory holding that l/ (openat2 RESOLVE_BENEATH), so a
// link aimed out of it (l/X → /etc) is refused, never mapped. Any other layer is taken as it is.
func idmappedLayer(l string, userns int) (int, error) {
	var st unix.Stat_t
	if err := unix.Lstat(l, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFLNK || filepath.Base(filepath.Dir(l)) != "l" {
		return idmap.IDMappedMount(l, userns)
	}
	fd, err := openLinkedLayer(l)
	if err != nil {
		return -1, err
	}
	defer unix.Close(fd)
	return idmap.IDMappedMountFD(fd, l, userns)
}

// openLinkedLayer resolves Docker's overlay2 link l (<overlay2>/l/NAME) beneath <overlay2>.
func openLinkedLayer(l string) (int, error) {
	top := filepath.Dir(filepath.Dir(l))
	dir, err := unix.Open(top, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("overlay layer %s: open %s: %w", l, top, err)
	}
	defer unix.Close(dir)
	fd, err := openat2.Open(dir, filepath.Join("l", filepath.Base(l)), &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return -1, fmt.Errorf("overlay layer %s: its link leads out of %s or to no directory: %w", l, top, err)
	}
	return fd, nil
}

// overlayLayers returns the layer directories of rootfs, top first (upperdir, then each lowerdir),
// if the rootfs (rootFD, whose real path is rootfs) is an overlay mount; nil if it is not an overlay.
func overlayLayers(rootFD int, rootfs string) ([]string, error) {
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(rootFD, &sfs); err != nil {
		return nil, fmt.Errorf("statfs %s: %w", rootfs, err)
	}
	if sfs.Type != unix.OVERLAYFS_SUPER_MAGIC {
		return nil, nil
	}
	mp := rootfs
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

// overlayUpperSize bounds the overlay's tmpfs upper layer: it only holds the mountpoints and
// generated-file targets the runtime creates before the root is made read-only.
const overlayUpperSize = "1m"

// overlayOf mounts a detached overlay of the layer mounts (top first) over a fresh tmpfs upper
// (or the caller's writable upper filesystem, upperFS >= 0) whose root has the top layer's mode
// and belongs to container root (owner), as the rootfs directory's own root would.
func overlayOf(layers []int, owner [2]uint32, upperFS int) (int, error) {
	var top unix.Stat_t
	if err := unix.Fstat(layers[0], &top); err != nil {
		return -1, fmt.Errorf("stat top layer: %w", err)
	}
	stage := upperFS
	if upperFS < 0 {
		var err error
		stage, err = fsmount("tmpfs", map[string]string{"size": overlayUpperSize, "mode": "0700"},
			unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
		if err != nil {
			return -1, fmt.Errorf("upper tmpfs: %w", err)
		}
		defer unix.Close(stage)
	}
	upper, err := mkdirAt(stage, "upper")
	if err != nil {
		return -1, err
	}
	defer unix.Close(upper)
	if err := unix.Fchmodat(stage, "upper", top.Mode&0o7777, 0); err != nil {
		return -1, fmt.Errorf("chmod upper: %w", err)
	}
	if err := unix.Fchownat(stage, "upper", int(owner[0]), int(owner[1]), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return -1, fmt.Errorf("chown upper: %w", err)
	}
	work, err := mkdirAt(stage, "work")
	if err != nil {
		return -1, err
	}
	defer unix.Close(work)

	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsopen overlay: %w", err)
	}
	defer unix.Close(fsfd)
	// Layers by descriptor (kernel ≥ 6.13; detached layer mounts ≥ 6.15): never by a path an
	// attacker could swap between our resolution and the kernel's.
	for i, l := range layers {
		if err := unix.FsconfigSetFd(fsfd, "lowerdir+", l); err != nil {
			return -1, fmt.Errorf("overlay layer %d: %w", i, err)
		}
	}
	if err := unix.FsconfigSetFd(fsfd, "upperdir", upper); err != nil {
		return -1, fmt.Errorf("overlay upperdir: %w", err)
	}
	if err := unix.FsconfigSetFd(fsfd, "workdir", work); err != nil {
		return -1, fmt.Errorf("overlay workdir: %w", err)
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return -1, fmt.Errorf("create overlay: %w", err)
	}
	fd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV)
	if err != nil {
		return -1, fmt.Errorf("fsmount overlay: %w", err)
	}
	return fd, nil
}

// fsmount creates a detached mount of a new fstype superblock with the given options.
func fsmount(fstype string, opts map[string]string, attrs int) (int, error) {
	fsfd, err := unix.Fsopen(fstype, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsopen %s: %w", fstype, err)
	}
	defer unix.Close(fsfd)
	for k, v := range opts {
		if err := unix.FsconfigSetString(fsfd, k, v); err != nil {
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
	// A writable root's upper filesystem has them from an earlier run of the container.
	if err := unix.Mkdirat(dir, name, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, fmt.Errorf("mkdir %s on upper tmpfs: %w", name, err)
	}
	fd, err := unix.Openat(dir, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s on upper tmpfs: %w", name, err)
	}
	return fd, nil
}
