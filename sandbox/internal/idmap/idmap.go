// Package idmap hands out disjoint, persistent host id ranges per tenant for user namespaces, and
// makes idmapped mounts so a rootfs owned by host root appears owned by the container's root.
package idmap

import "errors"

// Range is one tenant's host id range: container id 0 maps to UIDBase/GIDBase, Size ids in all.
type Range struct {
	Tenant  string `json:"tenant"`
	UIDBase uint32 `json:"uidBase"`
	GIDBase uint32 `json:"gidBase"`
	Size    uint32 `json:"size"`
}

// Allocator persists range allocations under one directory, serialised by flock.
type Allocator struct {
	dir string
}

// Open returns the allocator whose state lives in dir (created if missing).
func Open(dir string) (*Allocator, error) { return &Allocator{dir: dir}, nil }

// Acquire returns tenant's range, allocating one if the tenant holds none, and records containerID
// as a holder.
func (a *Allocator) Acquire(tenant, containerID string) (Range, error) {
	return Range{}, errors.New("idmap: not implemented yet")
}

// Release drops containerID as a holder; the range is freed when its last holder goes.
func (a *Allocator) Release(tenant, containerID string) error { return nil }

// List returns every allocated range.
func (a *Allocator) List() ([]Range, error) { return nil, nil }

// IDMappedMount returns a detached mount of src whose ownership is shifted through the user
// namespace usernsFD refers to.
func IDMappedMount(src string, usernsFD int) (mountFD int, err error) {
	return -1, errors.New("idmap: not implemented yet")
}
