package policy

import (
	"context"
	"errors"
)

// StorageQuery is the storage decision of the same policy: how large a tenant's volume or
// writable root may be (default/storage.rego). It is decided apart from runs, because a volume
// is made by `volume create` too, with no container.
const StorageQuery = "data.bulwark.run.storage_decision"

// StorageAPIVersion is the api_version of a storage request document.
const StorageAPIVersion = "bulwark.dev/storage/v1"

// StorageRequest asks for a volume of a size (0: the tenant's default) given what the tenant's
// volumes already take, or for the size of a container's writable root.
type StorageRequest struct {
	APIVersion string `json:"api_version"`
	Tenant     string `json:"tenant"`
	// Volume is the volume to make, if one is asked for.
	Volume *StorageVolume `json:"volume,omitempty"`
	// VolumesSize is the sum of the sizes of the tenant's volumes and writable roots.
	VolumesSize int64 `json:"volumesSize"`
	// WritableRoot asks for the size of a writable root.
	WritableRoot bool `json:"writableRoot"`
}

// StorageVolume is a volume a storage request asks for.
type StorageVolume struct {
	Name string `json:"name"`
	Size int64  `json:"size"` // bytes; 0: the tenant's default
}

// StorageDecision is the policy's answer; the zero value denies.
type StorageDecision struct {
	Allow   bool     `json:"allow"`
	Reasons []Reason `json:"reasons"`
	// VolumeSize is the size the volume gets (the one asked for, else the tenant's default;
	// 0: no limit).
	VolumeSize int64 `json:"volumeSize"`
	// WritableRootSize is the size of the tenant's writable roots (0: not granted).
	WritableRootSize int64 `json:"writableRootSize"`
}

// Err is nil when d allows, else a DeniedError carrying d's reasons.
func (d StorageDecision) Err() error {
	if d.Allow {
		return nil
	}
	return Decision{Reasons: d.Reasons}.Err()
}

// DecideStorage evaluates req against the storage decision, prepared on first use from the
// already compiled policy. Like Decide it never errors: an undefined or malformed result denies.
func (e *Engine) DecideStorage(ctx context.Context, req StorageRequest) StorageDecision {
	req.APIVersion = StorageAPIVersion
	d, obj := e.evalSide(ctx, &e.storage, StorageQuery, req)
	if obj == nil {
		return StorageDecision{Reasons: d.Reasons}
	}
	fail := func(err error) StorageDecision {
		return StorageDecision{Reasons: []Reason{{Code: CodePolicyError, Message: "storage decision: " + err.Error()}}}
	}
	out := StorageDecision{Allow: d.Allow, Reasons: d.Reasons}
	for k, dst := range map[string]*int64{"volumeSize": &out.VolumeSize, "writableRootSize": &out.WritableRootSize} {
		n, err := optInt(obj, k)
		if err != nil {
			return fail(err)
		}
		if n != nil {
			if *n < 0 {
				return fail(errors.New("a negative size"))
			}
			*dst = *n
		}
	}
	return out
}
