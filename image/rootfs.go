package image

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Rootfs is the read-only root filesystem of an image: an overlay of its verified layers with no
// upper directory, so nothing the container does can change a layer another container shares.
//
// Ownership: layer files keep the image's (container) ids. For a tenant's user namespace the
// sandbox idmaps each lower directory (open_tree + mount_setattr(MOUNT_ATTR_IDMAP)) and stacks
// the overlay on those mounts; overlayfs itself cannot be idmapped on this kernel, but an overlay
// of idmapped ext4/tmpfs lowers works (sandbox/overlay.go builds it). One copy of each layer
// serves all tenants.
type Rootfs struct {
	// Lower lists the layer trees topmost first, the order overlayfs' lowerdir wants.
	Lower []string
}

// Rootfs unpacks (if needed) the image desc and describes its overlay.
func (s *Store) Rootfs(desc ocispec.Descriptor, opts UnpackOptions) (*Rootfs, error) {
	layers, err := s.Unpack(desc, opts)
	if err != nil {
		return nil, err
	}
	r := &Rootfs{}
	for i := len(layers) - 1; i >= 0; i-- {
		r.Lower = append(r.Lower, layers[i].Dir)
	}
	// An overlay without an upper directory needs two lowers; an empty one changes nothing.
	if len(r.Lower) < 2 {
		empty := filepath.Join(s.layers, "empty")
		if err := os.Mkdir(empty, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("create empty lower: %w", err)
		}
		r.Lower = append(r.Lower, empty)
	}
	return r, nil
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
