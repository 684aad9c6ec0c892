package engine

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/errdefs"
	"bulwark.dev/bulwark/policy/document"
	"bulwark.dev/bulwark/volume"
)

// parseVolumeOpts reads `volume create --opt KEY=VALUE` options of the local driver: size only
// (docker's type, device and o mount a device or tmpfs of the caller's choice; not here). Any
// other option is refused, never ignored.
func parseVolumeOpts(opts map[string]string) (int64, error) {
	var size int64
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k != "size" {
			return 0, errdefs.Errorf(errdefs.ErrInvalidArgument, "volume option %q is not supported (size)", k)
		}
		n, err := volume.ParseSize(opts[k])
		if err != nil {
			return 0, err
		}
		size = n
	}
	return size, nil
}

// createVolume makes the tenant's volume name, or returns the existing one (created false). The
// policy's storage decision says how large a new one is (the size asked for, else the tenant's
// default) and refuses one over the tenant's maximum or total, with the reason; the store
// checks the total under the tenant's lock. A dry run makes nothing: a new volume is decided on
// and returned with the path it would have (created true; volume.Store.Planned).
func (e *Engine) createVolume(ctx context.Context, tenant, name string, anonymous, dryRun bool, size int64, t *trail) (*volume.Volume, bool, error) {
	pe, err := e.preparedPolicy(ctx, t)
	if err != nil {
		return nil, false, err
	}
	create := e.volumes.CreateSized
	if dryRun {
		create = e.volumes.Planned
	}
	v, created, err := create(tenant, name, anonymous, func(used int64) (int64, error) {
		d, err := pe.DecideStorage(ctx, document.StorageRequest{Tenant: tenant,
			Volume: &document.StorageVolume{Name: name, Size: size}, VolumesSize: used})
		if err == nil {
			err = d.Err()
		}
		if err != nil {
			return 0, fmt.Errorf("volume %s: %w", name, err)
		}
		return d.VolumeSize, nil
	})
	if err == nil && created && !dryRun {
		t.Add(audit.TypeEngine, "volume.create", map[string]string{"volume": v.Name, "tenant": tenant, "size": strconv.FormatInt(v.Size, 10)})
	}
	return v, created, err
}
