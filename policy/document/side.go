package document

// The quota and storage decisions of the same policy (policy/quota.go, policy/storage.go): their
// request and answer documents live here, beside the run request's, so that a caller that does
// not evaluate the policy itself (the bulwark CLI, whose decisions bulwark-policy makes) can ask
// them.

// QuotaUsage is what a tenant holds, or what a request adds to it.
type QuotaUsage struct {
	// Containers that exist: created, running or stopped, until removed.
	Containers int64 `json:"containers"`
	// Memory is the sum of their memory limits (bytes), Pids of their pids limits, NanoCPUs of
	// their CPU limits (--cpus × 10⁹).
	Memory   int64 `json:"memory"`
	Pids     int64 `json:"pids"`
	NanoCPUs int64 `json:"nanoCPUs"`
	// ImagesSize is the bytes of the images charged to the tenant (those it pulled).
	ImagesSize int64 `json:"imagesSize"`
}

// QuotaRequest asks whether Request fits in the tenant's quotas given Usage; without Request it
// asks for the limits only.
type QuotaRequest struct {
	APIVersion string      `json:"api_version"`
	Tenant     string      `json:"tenant"`
	Usage      QuotaUsage  `json:"usage"`
	Request    *QuotaUsage `json:"request,omitempty"`
}

// QuotaDecision is the policy's answer; the zero value denies.
type QuotaDecision struct {
	Allow   bool        `json:"allow"`
	Reasons []Reason    `json:"reasons"`
	Limits  QuotaLimits `json:"limits"`
}

// Err is nil when d allows, else a DeniedError carrying d's reasons.
func (d QuotaDecision) Err() error {
	if d.Allow {
		return nil
	}
	return Decision{Reasons: d.Reasons}.Err()
}

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
