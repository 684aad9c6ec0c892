// Package volume is the local volume driver: a tenant's named volumes, each a directory under
// <state-root>/volumes/<tenant>/<name>/ whose _data/ is what a container mounts. Names are per
// tenant: one tenant's "db" is not another's, and another tenant's volume is answered as missing.
// Data is owned by the storage range (sandbox.StorageIDBase): the sandbox idmaps it to the
// running container's ids, so container root owns its files and the host sees none owned by
// host root.
package volume

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/errdefs"
	"bulwark.dev/bulwark/internal/names"
	"bulwark.dev/bulwark/sandbox"
)

// Driver is the only driver: directories on the state root's filesystem.
const Driver = "local"

var (
	// ErrNotFound is a volume the tenant does not have (another tenant's included).
	ErrNotFound = errdefs.Errorf(errdefs.ErrNotFound, "no such volume")
	// ErrInUse is a volume a container still mounts.
	ErrInUse = errdefs.Errorf(errdefs.ErrConflict, "volume is in use")
)

// Volume is one named volume.
type Volume struct {
	Name       string    `json:"name"`
	Tenant     string    `json:"tenant"`
	Driver     string    `json:"driver"`
	Mountpoint string    `json:"mountpoint"` // the _data directory a container mounts
	CreatedAt  time.Time `json:"createdAt"`
	// Anonymous volumes are made for an image's VOLUME entries and go with their container.
	Anonymous bool `json:"anonymous,omitempty"`
	// Filled says the volume got its first content from an image (Fill): it is never filled again.
	Filled bool `json:"filled,omitempty"`
	// Size is the volume's limit in bytes, enforced by the kernel (quota.go); 0: none.
	Size int64 `json:"size,omitempty"`
}

// Options are how a volume is made.
type Options struct {
	Anonymous bool
	Size      int64 // bytes, at least MinSize; 0: no limit
}

// Store holds every tenant's volumes below one directory (<state-root>/volumes).
type Store struct {
	dir string
	// counted, if set, is what else counts toward a tenant's total besides its volumes (the
	// engine's writable roots); read under the tenant's lock.
	counted func(tenant string) (int64, error)
}

// CountAlso makes f's size count toward each tenant's total (policy's max_volumes_size) beside
// its volumes. Set it once, before the store is used.
func (s *Store) CountAlso(f func(tenant string) (int64, error)) { s.counted = f }

// Total is the tenant's total as WithTotal sees it, read without the lock (for a decision that
// makes nothing; WithTotal decides again before anything is made).
func (s *Store) Total(tenant string) (int64, error) { return s.usedSize(tenant) }

// WithTotal runs fn under the tenant's lock with the tenant's total (its volumes and what
// CountAlso adds): whatever fn makes that CountAlso counts is seen by the next volume or fn,
// so concurrent requests never together pass the tenant's maximum.
func (s *Store) WithTotal(tenant string, fn func(used int64) error) error {
	if !names.Tenant(tenant) {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid tenant name %q", tenant)
	}
	unlock, err := s.lockTenant(tenant)
	if err != nil {
		return err
	}
	defer unlock()
	used, err := s.usedSize(tenant)
	if err != nil {
		return err
	}
	return fn(used)
}

// Open returns the store under root/volumes, creating it (0700) if missing.
func Open(root string) (*Store, error) {
	dir := filepath.Join(root, "volumes")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("volume store %s: %w", dir, err)
	}
	return &Store{dir: dir}, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

func checkNames(tenant, name string) error {
	if !names.Tenant(tenant) {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "tenant %q: want [a-z0-9][a-z0-9-]{0,62}", tenant)
	}
	if !ValidName(name) {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "volume name %q: want [A-Za-z0-9][A-Za-z0-9_.-]{0,127}", name)
	}
	return nil
}

// ValidName reports whether name is a volume name (not a host path): Docker's syntax
// [A-Za-z0-9][A-Za-z0-9_.-]{0,127}, so no separators and no "..".
func ValidName(name string) bool { return names.Object(name) }

func (s *Store) tenantDir(tenant string) string { return filepath.Join(s.dir, tenant) }

// Create makes the volume name of tenant, or returns the existing one (created false), as
// docker volume create does; either is ready to mount (a sized one's filesystem mounted on its
// _data). It is made under a temporary name and renamed into place, so a creation killed
// half-way leaves no volume (the next change to the tenant's volumes removes the leftover).
func (s *Store) Create(tenant, name string, o Options) (*Volume, bool, error) {
	return s.CreateSized(tenant, name, o.Anonymous, func(int64) (int64, error) { return o.Size, nil })
}

// CreateSized is Create whose size, for a new volume only, is what size answers given the sum
// of the sizes of the tenant's volumes, under the tenant's lock, so two creations never both
// fit in a tenant's total; an error from size refuses the volume.
func (s *Store) CreateSized(tenant, name string, anonymous bool, size func(used int64) (int64, error)) (*Volume, bool, error) {
	if err := checkNames(tenant, name); err != nil {
		return nil, false, err
	}
	unlock, err := s.lockTenant(tenant)
	if err != nil {
		return nil, false, err
	}
	defer unlock()
	if err := s.collectLeftovers(tenant); err != nil {
		return nil, false, err
	}
	if v, err := s.Get(tenant, name); err == nil {
		return v, false, s.activate(v)
	} else if !errors.Is(err, ErrNotFound) {
		return nil, false, err
	}
	used, err := s.usedSize(tenant)
	if err != nil {
		return nil, false, err
	}
	o := Options{Anonymous: anonymous}
	if o.Size, err = size(used); err != nil {
		return nil, false, err
	}
	if o.Size != 0 && o.Size < MinSize {
		return nil, false, errdefs.Errorf(errdefs.ErrInvalidArgument, "volume %s: size %d is below the minimum %d (4 MiB)", name, o.Size, MinSize)
	}
	td := s.tenantDir(tenant)
	tmp, err := os.MkdirTemp(td, ".new-")
	if err != nil {
		return nil, false, fmt.Errorf("volume %s: %w", name, err)
	}
	defer os.RemoveAll(tmp)
	data := filepath.Join(tmp, "_data")
	if err := os.Mkdir(data, 0o755); err != nil {
		return nil, false, fmt.Errorf("volume %s: %w", name, err)
	}
	// Container root owns the volume's root (through the idmapped mount).
	if err := os.Lchown(data, int(sandbox.StorageIDBase), int(sandbox.StorageIDBase)); err != nil {
		return nil, false, fmt.Errorf("volume %s: %w", name, err)
	}
	if o.Size > 0 {
		if err := makeImage(tmp, o.Size); err != nil {
			return nil, false, fmt.Errorf("volume %s: %w", name, err)
		}
	}
	v := &Volume{Name: name, Tenant: tenant, Driver: Driver, CreatedAt: time.Now().UTC(), Anonymous: o.Anonymous,
		Size: o.Size, Mountpoint: filepath.Join(td, name, "_data")}
	if err := writeRecord(tmp, v); err != nil { // invisible until the rename
		return nil, false, err
	}
	if err := os.Rename(tmp, filepath.Join(td, name)); err != nil {
		return nil, false, fmt.Errorf("volume %s: %w", name, err)
	}
	return v, true, s.activateNew(v)
}

// Planned is CreateSized for a decision that must not change anything (a dry run): the
// existing volume, or a new one as CreateSized would make it — its size asked of size, the
// minimum checked, its Mountpoint the path it would have — without making it (created true)
// or anything else (not even the tenant's directory or lock: it only reads).
func (s *Store) Planned(tenant, name string, anonymous bool, size func(used int64) (int64, error)) (*Volume, bool, error) {
	if err := checkNames(tenant, name); err != nil {
		return nil, false, err
	}
	if v, err := s.Get(tenant, name); !errors.Is(err, ErrNotFound) {
		return v, false, err
	}
	used, err := s.usedSize(tenant)
	if err != nil {
		return nil, false, err
	}
	v := &Volume{Name: name, Tenant: tenant, Driver: Driver, Anonymous: anonymous, Mountpoint: filepath.Join(s.tenantDir(tenant), name, "_data")}
	if v.Size, err = size(used); err != nil {
		return nil, false, err
	}
	if v.Size != 0 && v.Size < MinSize {
		return nil, false, errdefs.Errorf(errdefs.ErrInvalidArgument, "volume %s: size %d is below the minimum %d (4 MiB)", name, v.Size, MinSize)
	}
	return v, true, nil
}

// Fill gives the volume its first content, as docker does when a volume is mounted where the
// image has files: fill is called with the data directory only while that is empty and the
// volume was never filled, under the volume's lock (two containers mounting a new volume at once
// fill it once). fill says whether it copied anything; if so the volume is recorded as filled. A
// fill that fails leaves the data directory empty again.
func (s *Store) Fill(v *Volume, fill func(data string) (bool, error)) error {
	dir := filepath.Join(s.tenantDir(v.Tenant), v.Name)
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("volume %q: %w", v.Name, err)
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		return fmt.Errorf("volume %q: lock: %w", v.Name, err)
	}
	cur, err := s.Get(v.Tenant, v.Name)
	if err != nil {
		return err
	}
	if cur.Filled {
		return nil
	}
	if empty, err := emptyDir(cur.Mountpoint); err != nil || !empty {
		return err
	}
	copied, err := fill(cur.Mountpoint)
	if err != nil {
		return errors.Join(err, clearDir(cur.Mountpoint))
	}
	if !copied {
		return nil
	}
	cur.Filled = true
	if err := writeRecord(dir, cur); err != nil {
		return errors.Join(err, clearDir(cur.Mountpoint))
	}
	v.Filled = true
	return nil
}

func emptyDir(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, fmt.Errorf("volume data: %w", err)
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("volume data: %w", err)
	}
	return len(names) == 0, nil
}

// clearDir removes what is in dir (symlinks are removed, never followed), keeping dir.
func clearDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("empty %s: %w", dir, err)
	}
	var errs []error
	for _, e := range ents {
		errs = append(errs, os.RemoveAll(filepath.Join(dir, e.Name())))
	}
	return errors.Join(errs...)
}

// writeRecord replaces dir's volume.json atomically.
func writeRecord(dir string, v *Volume) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, ".volume.json.new")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("volume %q: %w", v.Name, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "volume.json")); err != nil {
		return fmt.Errorf("volume %q: %w", v.Name, err)
	}
	return nil
}

// Get returns the tenant's volume name.
func (s *Store) Get(tenant, name string) (*Volume, error) {
	if err := checkNames(tenant, name); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(s.tenantDir(tenant), name, "volume.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("volume %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("volume %q: %w", name, err)
	}
	var v Volume
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("volume %q: corrupt record: %w", name, err)
	}
	v.Mountpoint = filepath.Join(s.tenantDir(tenant), name, "_data")
	return &v, nil
}

// Tenants returns the tenants that have (or had) volumes, by name.
func (s *Store) Tenants() ([]string, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("volume tenants: %w", err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && names.Tenant(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// List returns the tenant's volumes, by name.
func (s *Store) List(tenant string) ([]*Volume, error) {
	ents, err := os.ReadDir(s.tenantDir(tenant))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("volumes of %s: %w", tenant, err)
	}
	var out []*Volume
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		v, err := s.Get(tenant, e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Remove deletes the tenant's volume name and its data; inUse says whether a container still
// mounts it (the caller knows its containers), and then nothing is removed.
func (s *Store) Remove(tenant, name string, inUse func(*Volume) (bool, error)) error {
	if err := checkNames(tenant, name); err != nil {
		return err
	}
	unlock, err := s.lockTenant(tenant)
	if err != nil {
		return err
	}
	defer unlock()
	v, err := s.Get(tenant, name)
	if err != nil {
		return err
	}
	if used, err := inUse(v); err != nil {
		return err
	} else if used {
		return fmt.Errorf("volume %q: %w", name, ErrInUse)
	}
	// Its filesystem off _data first (a sized volume's), then out of the namespace (a rename is
	// atomic), then the data.
	if err := unmountImage(filepath.Dir(v.Mountpoint)); err != nil {
		return fmt.Errorf("remove volume %q: %w", name, err)
	}
	gone := filepath.Join(s.tenantDir(tenant), ".rm-"+name)
	if err := os.Rename(filepath.Join(s.tenantDir(tenant), name), gone); err != nil {
		return fmt.Errorf("remove volume %q: %w", name, err)
	}
	if err := os.RemoveAll(gone); err != nil {
		return fmt.Errorf("remove volume %q: %w", name, err)
	}
	return nil
}

// Prune removes the tenant's volumes no container mounts (inUse) and any creation or removal
// left half-done, and returns the names removed.
func (s *Store) Prune(tenant string, inUse func(*Volume) (bool, error)) ([]string, error) {
	vs, err := s.List(tenant)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, v := range vs {
		err := s.Remove(tenant, v.Name, inUse)
		if errors.Is(err, ErrInUse) {
			continue
		}
		if err != nil {
			return removed, err
		}
		removed = append(removed, v.Name)
	}
	unlock, err := s.lockTenant(tenant)
	if err != nil {
		return removed, err
	}
	defer unlock()
	return removed, s.collectLeftovers(tenant)
}
