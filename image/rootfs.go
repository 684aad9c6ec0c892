package image

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// Rootfs is the read-only root filesystem of an image: an overlay of its verified layers as
// read-only lowers (the sandbox adds only a private tmpfs upper for its mountpoints), so nothing
// a container does can change a layer another container shares.
//
// Ownership: layer files keep the image's (container) ids. For a tenant's user namespace the
// sandbox idmaps each lower directory (open_tree + mount_setattr(MOUNT_ATTR_IDMAP)) and stacks
// the overlay on those mounts; overlayfs itself cannot be idmapped on this kernel, but an overlay
// of idmapped ext4/tmpfs lowers works (sandbox/overlay.go builds it). One copy of each layer
// serves all tenants.
type Rootfs struct {
	// Lower lists the layer trees topmost first, the order overlayfs' lowerdir wants.
	Lower []string
	// DiffIDs names the image's layers, bottom first as in its configuration.
	DiffIDs []digest.Digest
}

// Rootfs unpacks (if needed) the image desc and describes its overlay.
func (s *Store) Rootfs(desc ocispec.Descriptor, opts UnpackOptions) (*Rootfs, error) {
	layers, err := s.Unpack(desc, opts)
	if err != nil {
		return nil, err
	}
	return s.layersRootfs(layers)
}

// RootfsOf is Rootfs for the image whose manifest m and configuration cfg the caller has read from
// the store and checked against their digests (a run verifies them first): they are not read
// again. Each layer is still unpacked only from a blob that hashes to its manifest digest and its
// diff_id.
func (s *Store) RootfsOf(m *ocispec.Manifest, cfg *ocispec.Image, opts UnpackOptions) (*Rootfs, error) {
	layers, err := s.unpackVerified(m, cfg, opts)
	if err != nil {
		return nil, err
	}
	return s.layersRootfs(layers)
}

// layersRootfs describes the overlay of unpacked layers (bottom first) from their records.
func (s *Store) layersRootfs(layers []Layer) (*Rootfs, error) {
	if len(layers) == 0 {
		return nil, errors.New("rootfs of no layers")
	}
	r := &Rootfs{DiffIDs: make([]digest.Digest, len(layers))}
	for i, l := range layers {
		r.DiffIDs[i] = l.DiffID
	}
	for i := len(layers) - 1; i >= 0; i-- {
		r.Lower = append(r.Lower, layers[i].Dir)
	}
	return s.withEmptyLower(r)
}

// LayerRootfs describes the overlay of layers unpacked before (bottom first), for a container
// whose image may have left the store since; a layer no longer unpacked is an error.
func (s *Store) LayerRootfs(diffIDs []digest.Digest) (*Rootfs, error) {
	if len(diffIDs) == 0 {
		return nil, errors.New("rootfs of no layers")
	}
	r := &Rootfs{DiffIDs: diffIDs}
	for i := len(diffIDs) - 1; i >= 0; i-- {
		if err := checkDigest(diffIDs[i]); err != nil {
			return nil, err
		}
		rec, err := readLayerRecord(s.layerDir(diffIDs[i]))
		if err != nil {
			return nil, fmt.Errorf("layer %s is not unpacked: %w", diffIDs[i], err)
		}
		r.Lower = append(r.Lower, rec.Dir)
	}
	return s.withEmptyLower(r)
}

// withEmptyLower adds an empty lower to a rootfs of one layer: an overlay without an upper
// directory needs two lowers; an empty one changes nothing.
func (s *Store) withEmptyLower(r *Rootfs) (*Rootfs, error) {
	if len(r.Lower) < 2 {
		empty := filepath.Join(s.layers, "empty")
		if err := os.Mkdir(empty, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("create empty lower: %w", err)
		}
		r.Lower = append(r.Lower, empty)
	}
	return r, nil
}

// Mount returns a detached, read-only overlay mount of the layers, opened as a directory: a view
// of the image's files for the host to read (user and group names) that is attached nowhere, so
// no other process sees it, and vanishes when the file is closed. Layers are given one by one
// (lowerdir+), so no option-size limit applies.
func (r *Rootfs) Mount() (*os.File, error) {
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("fsopen overlay: %w", err)
	}
	defer unix.Close(fsfd)
	for _, l := range r.Lower {
		if err := unix.FsconfigSetString(fsfd, "lowerdir+", l); err != nil {
			return nil, fmt.Errorf("overlay layer %s: %w", l, err)
		}
	}
	for _, o := range [][2]string{{"redirect_dir", "nofollow"}, {"metacopy", "off"}, {"index", "off"}} {
		if err := unix.FsconfigSetString(fsfd, o[0], o[1]); err != nil {
			return nil, fmt.Errorf("overlay option %s=%s: %w", o[0], o[1], err)
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return nil, fmt.Errorf("create overlay of %d layers: %w", len(r.Lower), err)
	}
	fd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return nil, fmt.Errorf("fsmount overlay: %w", err)
	}
	return os.NewFile(uintptr(fd), "image rootfs"), nil
}

// maxOptions is the page-sized limit on mount(2) option data.
const maxOptions = 4096

// MountOptions is the option string for mount(2) of type "overlay" with MS_RDONLY (and
// MS_NOSUID|MS_NODEV). Layers carry no trusted.* xattrs (the unpacker drops them), and redirects
// and metacopy are refused anyway, so a hostile layer cannot point overlayfs at another layer's
// files (the CVE-2021-3493 / CVE-2023-0386 family lives in overlay's trust of xattrs).
// userxattr is for a mount made inside a user namespace.
func (r *Rootfs) MountOptions(userxattr bool) (string, error) {
	for _, l := range r.Lower {
		if strings.ContainsAny(l, ":,\\") {
			return "", fmt.Errorf("layer path %q contains an overlay option separator", l)
		}
	}
	opts := "lowerdir=" + strings.Join(r.Lower, ":") + ",redirect_dir=nofollow,metacopy=off,index=off"
	if userxattr {
		opts += ",userxattr"
	}
	if len(opts) >= maxOptions {
		// fsconfig(FSCONFIG_SET_STRING, "lowerdir+", dir) per layer (Linux 6.8) has no such limit.
		return "", fmt.Errorf("overlay options of %d layers exceed %d bytes; use lowerdir+ with fsconfig", len(r.Lower), maxOptions)
	}
	return opts, nil
}
