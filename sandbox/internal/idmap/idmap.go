// Package idmap hands out disjoint, persistent host id ranges per tenant for user namespaces, and
// makes idmapped mounts so a rootfs owned by host root appears owned by the container's root.
package idmap

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/atomicfile"
	"bulwark.dev/bulwark/internal/flock"
)

const (
	// RangeSize is the number of ids a tenant gets: a full 16-bit id space, so every uid and gid
	// an image may use (including 65534 nobody) maps to a host id of the tenant's own.
	RangeSize uint32 = 65536
	// firstBase keeps tenant ranges far above ordinary host users and system ids.
	firstBase uint32 = 1 << 20
	// lastID is the highest usable id; 4294967295 is (uid_t)-1, "no id".
	lastID uint64 = 1<<32 - 2

	stateFile = "ranges.json"
	lockFile  = "lock"
)

// ErrCorrupt is wrapped by errors for a state file that cannot be trusted. The allocator never
// resets it silently: that would hand one tenant's ids to another.
var ErrCorrupt = errors.New("idmap state is corrupt")

// Range is one tenant's host id range: container id 0 maps to UIDBase/GIDBase, Size ids in all.
type Range struct {
	Tenant  string `json:"tenant"`
	UIDBase uint32 `json:"uidBase"`
	GIDBase uint32 `json:"gidBase"`
	Size    uint32 `json:"size"`
}

// entry is a Range with the containers holding it (the refcount).
type entry struct {
	Range
	Holders []string `json:"holders"`
}

type state struct {
	Version int     `json:"version"`
	Ranges  []entry `json:"ranges"`
}

// Allocator persists range allocations in one directory. Every operation takes an exclusive flock
// on <dir>/lock, so goroutines and separate runtime processes see one consistent allocation.
type Allocator struct {
	dir string
	// subUID and subGID are the host's subordinate id files; their ranges belong to host users
	// (rootless containers, newuidmap) and are never handed out.
	subUID, subGID string
}

// Open returns the allocator whose state lives in dir, creating dir if missing. A corrupt state
// file is reported (wrapping ErrCorrupt) rather than reset.
func Open(dir string) (*Allocator, error) {
	return open(dir, "/etc/subuid", "/etc/subgid")
}

func open(dir, subUID, subGID string) (*Allocator, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create idmap dir: %w", err)
	}
	a := &Allocator{dir: dir, subUID: subUID, subGID: subGID}
	if err := a.locked(func(*state) (bool, error) { return false, nil }); err != nil {
		return nil, err
	}
	return a, nil
}

// Acquire returns tenant's range, allocating the lowest free one if the tenant holds none, and
// records containerID as a holder. Acquiring twice for the same container is a no-op.
func (a *Allocator) Acquire(tenant, containerID string) (Range, error) {
	if tenant == "" || containerID == "" {
		return Range{}, errors.New("idmap acquire: tenant and container id must not be empty")
	}
	var out Range
	err := a.locked(func(st *state) (bool, error) {
		for i := range st.Ranges {
			e := &st.Ranges[i]
			if e.Tenant != tenant {
				continue
			}
			out = e.Range
			if slices.Contains(e.Holders, containerID) {
				return false, nil
			}
			e.Holders = append(e.Holders, containerID)
			return true, nil
		}
		base, err := a.freeBase(st)
		if err != nil {
			return false, err
		}
		out = Range{Tenant: tenant, UIDBase: base, GIDBase: base, Size: RangeSize}
		st.Ranges = append(st.Ranges, entry{Range: out, Holders: []string{containerID}})
		return true, nil
	})
	if err != nil {
		return Range{}, fmt.Errorf("idmap acquire for tenant %q: %w", tenant, err)
	}
	return out, nil
}

// Release drops containerID as a holder of tenant's range; the range is freed when its last
// holder goes. Releasing what is not held is not an error, so Delete stays idempotent.
func (a *Allocator) Release(tenant, containerID string) error {
	err := a.locked(func(st *state) (bool, error) {
		for i := range st.Ranges {
			e := &st.Ranges[i]
			if e.Tenant != tenant {
				continue
			}
			j := slices.Index(e.Holders, containerID)
			if j < 0 {
				return false, nil
			}
			e.Holders = slices.Delete(e.Holders, j, j+1)
			if len(e.Holders) == 0 {
				st.Ranges = slices.Delete(st.Ranges, i, i+1)
			}
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("idmap release for tenant %q: %w", tenant, err)
	}
	return nil
}

// List returns every allocated range, ordered by UIDBase.
func (a *Allocator) List() ([]Range, error) {
	var out []Range
	err := a.locked(func(st *state) (bool, error) {
		for _, e := range st.Ranges {
			out = append(out, e.Range)
		}
		return false, nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].UIDBase < out[j].UIDBase })
	return out, err
}

// freeBase finds the lowest RangeSize-aligned base at or above firstBase whose range overlaps
// neither an allocated range nor a host subordinate id range, for uids and gids alike (one base
// serves both, which keeps ownership arithmetic simple for image layers).
func (a *Allocator) freeBase(st *state) (uint32, error) {
	var taken []interval
	for _, e := range st.Ranges {
		taken = append(taken, interval{uint64(e.UIDBase), uint64(e.UIDBase) + uint64(e.Size)},
			interval{uint64(e.GIDBase), uint64(e.GIDBase) + uint64(e.Size)})
	}
	for _, f := range []string{a.subUID, a.subGID} {
		sub, err := readSubIDs(f)
		if err != nil {
			return 0, err
		}
		taken = append(taken, sub...)
	}
	base := uint64(firstBase)
	for base+uint64(RangeSize)-1 <= lastID {
		clash := false
		for _, t := range taken {
			if t.overlaps(interval{base, base + uint64(RangeSize)}) {
				// Jump past the clash to the next aligned base.
				base = (t.end + uint64(RangeSize) - 1) / uint64(RangeSize) * uint64(RangeSize)
				clash = true
				break
			}
		}
		if !clash {
			return uint32(base), nil
		}
	}
	return 0, errors.New("no free id range left")
}

// locked runs fn on the current state under the exclusive lock, and saves the state if fn
// reports a change.
func (a *Allocator) locked(fn func(*state) (changed bool, err error)) error {
	lf, err := os.OpenFile(filepath.Join(a.dir, lockFile), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("open idmap lock: %w", err)
	}
	defer lf.Close() // closing releases the flock
	if err := lockExclusive(lf); err != nil {
		return err
	}
	// A writer killed between CreateTemp and Rename in save leaves its temporary file behind;
	// with the lock held, every temporary file present now is such a leftover.
	if stale, err := filepath.Glob(filepath.Join(a.dir, ".ranges-*.json")); err == nil {
		for _, p := range stale {
			os.Remove(p)
		}
	}
	st, err := a.load()
	if err != nil {
		return err
	}
	changed, err := fn(st)
	if err != nil || !changed {
		return err
	}
	return a.save(st)
}

func lockExclusive(f *os.File) error {
	if err := flock.Lock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return nil
}

func (a *Allocator) load() (*state, error) {
	p := filepath.Join(a.dir, stateFile)
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return &state{Version: 1}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	var st state
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, p, err)
	}
	if err := st.validate(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, p, err)
	}
	return &st, nil
}

// validate rejects a state that breaks the allocator's invariants (hand-edited, or written by a
// buggy version): using it could give two tenants overlapping ids.
func (st *state) validate() error {
	if st.Version != 1 {
		return fmt.Errorf("unknown version %d", st.Version)
	}
	tenants := map[string]bool{}
	for i, e := range st.Ranges {
		switch {
		case e.Tenant == "" || tenants[e.Tenant]:
			return fmt.Errorf("range %d: empty or duplicate tenant %q", i, e.Tenant)
		case e.Size != RangeSize || e.UIDBase < firstBase || e.GIDBase < firstBase ||
			uint64(e.UIDBase)+uint64(e.Size)-1 > lastID || uint64(e.GIDBase)+uint64(e.Size)-1 > lastID:
			return fmt.Errorf("range %d (tenant %q): invalid bounds", i, e.Tenant)
		case len(e.Holders) == 0:
			return fmt.Errorf("range %d (tenant %q): no holders", i, e.Tenant)
		}
		tenants[e.Tenant] = true
		for _, o := range st.Ranges[:i] {
			if span(o.UIDBase, o.Size).overlaps(span(e.UIDBase, e.Size)) ||
				span(o.GIDBase, o.Size).overlaps(span(e.GIDBase, e.Size)) {
				return fmt.Errorf("ranges of tenants %q and %q overlap", o.Tenant, e.Tenant)
			}
		}
	}
	return nil
}

// save replaces the state file atomically (write, fsync, rename, fsync dir): a crash leaves
// either the old or the new state, never a torn file that would then read as corrupt.
func (a *Allocator) save(st *state) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode idmap state: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(a.dir, stateFile), append(data, '\n'), atomicfile.Options{Sync: true, SyncDir: true}); err != nil {
		return fmt.Errorf("write idmap state: %w", err)
	}
	return nil
}
