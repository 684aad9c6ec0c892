package engine

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/image"
	"bulwark.dev/bulwark/internal/openat2"
)

// A container's root is its image's verified layers as the store unpacked them, handed to the
// sandbox (CreateFromLayers), which stacks idmapped mounts of them into a read-only overlay over
// a small private upper for the mountpoints it creates. An image exists once on disk, however
// many containers run it, and starting one costs nothing that grows with the image's files.

// rootfsPath is the spec's root.path for such a container: the sandbox does not read it.
const rootfsPath = "rootfs"

// imageRoot is an image's root filesystem as the engine sees it: its layers, and a read-only
// view of their merged files for the few the engine reads (user and group names), mounted on
// first use as a detached overlay no other process can see.
type imageRoot struct {
	rfs  *image.Rootfs
	view *os.File
}

// imageRootfs unpacks (if needed) the layers of the verified image img (its manifest and
// configuration are not read again).
func (e *Engine) imageRootfs(img *verifiedImage) (*imageRoot, error) {
	rfs, err := e.store.RootfsOf(img.Manifest, img.Config, e.cfg.Unpack)
	if err != nil {
		return nil, fmt.Errorf("unpack verified layers: %w", err)
	}
	return &imageRoot{rfs: rfs}, nil
}

// layersRoot is the root of a container from the layers recorded for it (diff_ids, bottom
// first): the image may have left the store since, its unpacked layers stay while a container
// records them (PruneLayers).
func (e *Engine) layersRoot(diffIDs []string) (*imageRoot, error) {
	ids := make([]digest.Digest, len(diffIDs))
	for i, d := range diffIDs {
		ids[i] = digest.Digest(d)
	}
	rfs, err := e.store.LayerRootfs(ids)
	if err != nil {
		return nil, fmt.Errorf("container rootfs: %w", err)
	}
	return &imageRoot{rfs: rfs}, nil
}

// diffIDs are the layers' names, bottom first, as a plan and a container record keep them.
func (r *imageRoot) diffIDs() []string {
	out := make([]string, len(r.rfs.DiffIDs))
	for i, d := range r.rfs.DiffIDs {
		out[i] = d.String()
	}
	return out
}

// Close releases the view, if one was mounted.
func (r *imageRoot) Close() error {
	if r == nil || r.view == nil {
		return nil
	}
	return r.view.Close()
}

// openInRoot opens a file of the image for reading, resolved inside its root: a symlink in the
// image (/etc/passwd -> /host/x) is followed as the container would follow it, never onto the host.
func openInRoot(r *imageRoot, p string) (*os.File, error) {
	if r.view == nil {
		v, err := r.rfs.Mount()
		if err != nil {
			return nil, fmt.Errorf("view of the image: %w", err)
		}
		r.view = v
	}
	rel := strings.TrimPrefix(path.Clean("/"+p), "/")
	if rel == "" {
		rel = "."
	}
	fd, err := openat2.Open(int(r.view.Fd()), rel, &unix.OpenHow{
		Flags: unix.O_RDONLY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

// PruneLayers removes unpacked layers no tagged image and no container (running or stopped)
// uses, and what older versions left under <root>/rootfs (a flattened copy of every image run).
func (e *Engine) PruneLayers() ([]digest.Digest, error) {
	keep := map[digest.Digest]bool{}
	names, err := e.recordNames()
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		m, err := e.readMeta(name)
		if err != nil {
			return nil, fmt.Errorf("container %s: %w (keeping every layer)", name, err)
		}
		if len(m.Image.Layers) == 0 {
			// Created by a version that ran a flattened copy, which the removal below takes: the
			// container cannot start again anyway.
			continue
		}
		for _, d := range m.Image.Layers {
			keep[digest.Digest(d)] = true
		}
	}
	removed, err := e.store.PruneLayers(keep)
	if err != nil {
		return removed, err
	}
	if err := os.RemoveAll(filepath.Join(e.cfg.Root, "rootfs")); err != nil {
		return removed, fmt.Errorf("remove the flattened trees of older versions: %w", err)
	}
	return removed, nil
}
