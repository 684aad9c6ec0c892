package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/errdefs"
	"bulwark.dev/bulwark/policy/document"
	"bulwark.dev/bulwark/sandbox"
	"bulwark.dev/bulwark/volume"
)

// A writable root (run --read-only=false) is a grant of the tenant's policy (writable_root_size,
// policy/default/storage.rego): the container's overlay gets an upper layer of its own, an ext4
// filesystem of that size in <root>/engine/<id>/upper.img (its blocks reserved on the host when
// the container is created, so a full root fails with ENOSPC inside and takes nothing more from
// the host), mounted detached (never in the host's mount namespace) and handed to the sandbox.
// The image goes with the container's directory when it is removed, and its loop device with
// the container's last process. Everything else of the floor stays (nosuid, nodev, volumes and
// binds as before); what the grant gives up is that the workload can execute files it wrote into
// its root.

// A writable root's filesystem counts toward the tenant's max_volumes_size as a volume does: it
// is decided with the tenant's total (volumes and writable roots) and made under the volume
// store's tenant lock (volume.Store.WithTotal), so volumes and roots made at once never
// together pass the maximum.

// upperImage is a writable-root container's upper filesystem, in its directory.
const upperImage = "upper.img"

// writableRootSize is the size policy grants the tenant's writable roots, or the refusal with
// its reason (ROOTFS_WRITABLE when the tenant has none; VOLUMES_TOTAL_NOT_GRANTED when one more
// would bring the tenant's storage over max_volumes_size). Nothing is made (a dry run asks it
// too): createWritable decides again under the lock before it makes the filesystem.
func (e *Engine) writableRootSize(ctx context.Context, tenant string, t *trail) (int64, error) {
	used, err := e.volumes.Total(tenant)
	if err != nil {
		return 0, err
	}
	return e.decideWritableRoot(ctx, tenant, used, t)
}

func (e *Engine) decideWritableRoot(ctx context.Context, tenant string, used int64, t *trail) (int64, error) {
	pe, err := e.preparedPolicy(ctx, t)
	if err != nil {
		return 0, err
	}
	d, err := pe.DecideStorage(ctx, document.StorageRequest{Tenant: tenant, WritableRoot: true, VolumesSize: used})
	if err == nil {
		err = d.Err()
	}
	if err != nil {
		return 0, fmt.Errorf("--read-only=false: %w", err)
	}
	if d.WritableRootSize <= 0 {
		// A policy that allows the root but sizes it at nothing grants no writable root.
		return 0, errdefs.Errorf(errdefs.ErrRefusedByPolicy, "--read-only=false: policy allowed a writable root of size %d for tenant %q: no writable root is granted", d.WritableRootSize, tenant)
	}
	return d.WritableRootSize, nil
}

// writableRootsSize is the sum of the sizes of the tenant's writable roots: the upper
// filesystem images of its containers (their blocks are reserved when made).
func (e *Engine) writableRootsSize(tenant string) (int64, error) {
	names, err := e.recordNames()
	if err != nil {
		return 0, fmt.Errorf("writable roots: %w", err)
	}
	var n int64
	for _, name := range names {
		st, err := os.Lstat(filepath.Join(e.metaDir(name), upperImage))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("writable roots: %w", err)
		}
		m, err := e.readMeta(name)
		if err != nil {
			continue // a record being created or removed right now
		}
		if m.owner() == tenant {
			n += st.Size()
		}
	}
	return n, nil
}

// createWritable creates the container of plan over its writable upper filesystem (made on its
// first run) in dir, its directory.
func (e *Engine) createWritable(ctx context.Context, rt *sandbox.Runtime, plan *Plan, dir string, layers []string, stdio sandbox.IO) (*sandbox.Container, error) {
	img := filepath.Join(dir, upperImage)
	if _, err := os.Stat(img); errors.Is(err, os.ErrNotExist) {
		// Decided again under the lock, with what was made since the run was decided.
		err := e.volumes.WithTotal(plan.Request.Tenant, func(used int64) error {
			if _, err := e.decideWritableRoot(ctx, plan.Request.Tenant, used, plan.trail); err != nil {
				return err
			}
			return volume.MakeFilesystem(img, plan.WritableRootSize)
		})
		if err != nil {
			return nil, fmt.Errorf("writable root: %w", err)
		}
		plan.trail.Add(audit.TypeContainer, "rootfs.writable", map[string]string{"size": strconv.FormatInt(plan.WritableRootSize, 10)})
	} else if err != nil {
		return nil, fmt.Errorf("writable root: %w", err)
	}
	upper, err := volume.MountDetached(img)
	if err != nil {
		return nil, fmt.Errorf("writable root: %w", err)
	}
	defer upper.Close()    // the overlay holds its own reference
	if plan.floor != nil { // decided in this process: created exactly as decided
		return rt.CreateFlooredFromLayers(ctx, plan.ID, dir, plan.floor, layers, upper, stdio)
	}
	return rt.CreateFromLayersWritable(ctx, plan.ID, dir, plan.Spec, layers, upper, plan.binds, stdio)
}
