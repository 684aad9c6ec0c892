package engine

import (
	"os"
	"path/filepath"
	"sort"

	"github.com/opencontainers/go-digest"

	"bulwark.dev/bulwark/internal/du"
)

// DiskUsage is what `bulwark system df` shows: the image store and unpacked layers (shared by
// every tenant), and the containers and volumes of the tenants asked for. Sizes are disk space
// allocated (du); Active counts the containers, of any tenant, using an item: an image, layer
// or volume no container uses is what prune would reclaim.
type DiskUsage struct {
	Images     []ImageUsage     `json:"images"`
	Layers     []LayerUsage     `json:"layers"`
	Containers []ContainerUsage `json:"containers"`
	Volumes    []VolumeUsage    `json:"volumes"`
}

// ImageUsage is one tagged image: its blobs (manifest, config, compressed layers) in the store.
type ImageUsage struct {
	Ref        string `json:"ref"`
	Digest     string `json:"digest"`
	Size       int64  `json:"size"`
	Containers int    `json:"containers"`
}

// LayerUsage is one unpacked layer tree (stored once, whatever uses it).
type LayerUsage struct {
	DiffID     string `json:"diffID"`
	Size       int64  `json:"size"`
	Images     int    `json:"images"`
	Containers int    `json:"containers"`
}

// ContainerUsage is one container's state on disk (records, logs, the sandbox's state).
type ContainerUsage struct {
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
	Image  string `json:"image"`
	Status string `json:"status"`
	Size   int64  `json:"size"`
}

// VolumeUsage is one volume's data and record (a sized volume's: its filesystem image, all of
// it reserved when made).
type VolumeUsage struct {
	Name      string `json:"name"`
	Tenant    string `json:"tenant"`
	Anonymous bool   `json:"anonymous,omitempty"`
	Size      int64  `json:"size"`
	// Limit is the volume's size limit (0: none).
	Limit      int64 `json:"limit,omitempty"`
	Containers int   `json:"containers"`
}

// DiskUsage measures the state root for who's tenant, or for every tenant with allTenants.
func (e *Engine) DiskUsage(who Caller, allTenants bool) (*DiskUsage, error) {
	out := &DiskUsage{Images: []ImageUsage{}, Layers: []LayerUsage{}, Containers: []ContainerUsage{}, Volumes: []VolumeUsage{}}
	names, err := e.recordNames()
	if err != nil {
		return nil, err
	}
	// What every container (any tenant) uses: its image, layers and volume directories.
	byImage, byLayer, byMount := map[string]int{}, map[string]int{}, map[string]int{}
	for _, name := range names {
		m, err := e.readMeta(name)
		if err != nil {
			continue // being created or removed
		}
		byImage[m.Image.Digest]++
		for _, l := range m.Image.Layers {
			byLayer[l]++
		}
		if s, err := e.readEffectiveSpec(m.ID); err == nil {
			for _, mt := range s.Mounts {
				byMount[mt.Source]++
			}
		}
		if !allTenants && m.owner() != who.tenant() {
			continue
		}
		c, err := e.inspect(m)
		if err != nil {
			continue
		}
		size, err := sizes(e.metaDir(m.ID), filepath.Join(e.cfg.RunRoot, "containers", m.ID))
		if err != nil {
			return nil, err
		}
		out.Containers = append(out.Containers, ContainerUsage{ID: m.ID, Tenant: m.owner(), Image: m.Image.Reference, Status: c.Status, Size: size})
	}
	if err := e.imageUsage(out, byImage, byLayer); err != nil {
		return nil, err
	}
	tenants := []string{who.tenant()}
	if allTenants {
		if tenants, err = e.volumes.Tenants(); err != nil {
			return nil, err
		}
	}
	for _, t := range tenants {
		vs, err := e.volumes.List(t)
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			size, err := du.Size(filepath.Dir(v.Mountpoint))
			if err != nil {
				return nil, err
			}
			out.Volumes = append(out.Volumes, VolumeUsage{Name: v.Name, Tenant: t, Anonymous: v.Anonymous, Size: size, Limit: v.Size, Containers: byMount[v.Mountpoint]})
		}
	}
	return out, nil
}

// imageUsage fills in the images (blob bytes each, a blob two images share counted for both)
// and the unpacked layers.
func (e *Engine) imageUsage(out *DiskUsage, byImage, byLayer map[string]int) error {
	imgs, err := e.store.List()
	if err != nil {
		return err
	}
	layerImages := map[digest.Digest]int{}
	for _, im := range imgs {
		m, err := e.store.Manifest(im.Descriptor)
		if err != nil {
			continue // broken: GC takes its blobs
		}
		blobs := []digest.Digest{im.Descriptor.Digest, m.Config.Digest}
		for _, l := range m.Layers {
			blobs = append(blobs, l.Digest)
		}
		var size int64
		for _, b := range blobs {
			if p, err := e.store.BlobPath(b); err == nil {
				n, err := du.Size(p)
				if err != nil {
					return err
				}
				size += n
			}
		}
		if cfg, err := e.store.Config(m); err == nil {
			for _, d := range cfg.RootFS.DiffIDs {
				layerImages[d]++
			}
		}
		d := im.Descriptor.Digest.String()
		out.Images = append(out.Images, ImageUsage{Ref: im.Ref, Digest: d, Size: size, Containers: byImage[d]})
	}
	layers, err := e.store.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		size, err := du.Size(filepath.Dir(l.Dir))
		if err != nil {
			return err
		}
		out.Layers = append(out.Layers, LayerUsage{DiffID: l.DiffID.String(), Size: size, Images: layerImages[l.DiffID], Containers: byLayer[l.DiffID.String()]})
	}
	sort.Slice(out.Layers, func(i, j int) bool { return out.Layers[i].DiffID < out.Layers[j].DiffID })
	return nil
}

// sizes is the disk usage of dirs together.
func sizes(dirs ...string) (int64, error) {
	c := du.New()
	var total int64
	for _, d := range dirs {
		if _, err := os.Lstat(d); os.IsNotExist(err) {
			continue
		}
		n, err := c.Size(d)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}
