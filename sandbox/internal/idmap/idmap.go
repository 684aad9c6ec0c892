// Package idmap hands out disjoint, persistent host id ranges per tenant for user namespaces, and
// makes idmapped mounts so a rootfs owned by host root appears owned by the container's root.
package idmap

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/atomicfile"
	"bulwark.dev/bulwark/internal/flock"
	"bulwark.dev/bulwark/internal/plainfile"
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
	// holdersDir has a directory per tenant (its name hex-encoded) holding an empty file per
	// container that holds the tenant's range.
	holdersDir = "holders"
	// holderFile is the empty file every holder is a hard link of.
	holderFile = "holder"
	// stateVersion 2 keeps holders as files; version 1 listed them in the state file.
	stateVersion = 2
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

// entry is a tenant's binding to its range. Holders are listed only by a version 1 state, which
// the allocator converts on first use.
type entry struct {
	Range
	Holders []string `json:"holders,omitempty"`
}

type state struct {
	Version int     `json:"version"`
	Ranges  []entry `json:"ranges"`
}

// Allocator persists range allocations in one directory. Every operation takes an exclusive flock
// on <dir>/lock, so goroutines and separate runtime processes see one consistent allocation.
//
// A tenant's binding to its range (ranges.json) is written, and flushed to disk, only when the
// tenant gets a range; it stays after the tenant's last container goes, until another tenant needs
// those ids. The containers holding a range are names in holders/<tenant>/ (the tenant's
// directory stays while its binding does), each a hard link of one empty file (<dir>/holder),
// made and removed without a flush: a container's create and delete rewrite nothing, wait on no
// disk flush and allocate no inode — the two flushes per create and per delete were most of the
// runtime's cgroups+idrange and teardown steps, and on the state root's ext4 here a new inode
// (file or directory) costs ≈ 0.7 ms, a link or unlink ≈ 0.02 (issue 14). A holder file lost in
// a crash (power cut) belonged to a container the crash killed; one left behind keeps the range with its own tenant. A range
// goes to another tenant only once its binding has no holder file, which the data a container
// wrote does not depend on: volumes and writable binds keep their files in the storage range
// (StorageBase), never in a tenant's.
type Allocator struct {
	dir string
	// subUID and subGID are the host's subordinate id files; their ranges belong to host users
	// (rootless containers, newuidmap) and are never handed out.
	subUID, subGID string
}

// Open returns the allocator whose state lives in dir, creating dir if missing. The state is
// read and checked by each operation, under its lock: a corrupt state file is reported then
// (wrapping ErrCorrupt), never reset.
func Open(dir string) (*Allocator, error) {
	return open(dir, "/etc/subuid", "/etc/subgid")
}

func open(dir, subUID, subGID string) (*Allocator, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create idmap dir: %w", err)
	}
	return &Allocator{dir: dir, subUID: subUID, subGID: subGID}, nil
}

// Acquire returns tenant's range, binding the lowest free one if the tenant has none, and
// records containerID as a holder. Acquiring twice for the same container is a no-op.
func (a *Allocator) Acquire(tenant, containerID string) (Range, error) {
	var out Range
	err := a.locked(tenant, containerID, func(st *state) error {
		if e := st.find(tenant); e != nil {
			out = e.Range
			return a.hold(tenant, containerID)
		}
		held, err := a.held(st)
		if err != nil {
			return err
		}
		base, err := a.freeBase(held)
		if err != nil {
			return err
		}
		out = Range{Tenant: tenant, UIDBase: base, GIDBase: base, Size: RangeSize}
		// The ids may have been another tenant's, kept after its last holder went: take them over.
		st.Ranges = slices.DeleteFunc(st.Ranges, func(e entry) bool {
			if e.overlaps(out) {
				// Its holder directory is empty: held has just read it.
				unix.Rmdir(a.holders(e.Tenant))
				return true
			}
			return false
		})
		st.Ranges = append(st.Ranges, entry{Range: out})
		// The binding is on disk before anything holds it.
		if err := a.save(st); err != nil {
			return err
		}
		return a.hold(tenant, containerID)
	})
	if err != nil {
		return Range{}, fmt.Errorf("idmap acquire for tenant %q: %w", tenant, err)
	}
	return out, nil
}

// Release drops containerID as a holder of tenant's range; once it has no holder left the range
// may go to another tenant. Releasing what is not held is not an error, so Delete stays
// idempotent. The tenant's holder directory stays, empty, with its binding.
func (a *Allocator) Release(tenant, containerID string) error {
	err := a.locked(tenant, containerID, func(*state) error {
		if err := os.Remove(filepath.Join(a.holders(tenant), containerID)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove holder: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("idmap release for tenant %q: %w", tenant, err)
	}
	return nil
}

// List returns every range some container holds, ordered by UIDBase.
func (a *Allocator) List() ([]Range, error) {
	var out []Range
	err := a.locked("", "", func(st *state) error {
		var err error
		out, err = a.held(st)
		return err
	})
	sort.Slice(out, func(i, j int) bool { return out[i].UIDBase < out[j].UIDBase })
	return out, err
}

func (st *state) find(tenant string) *entry {
	for i := range st.Ranges {
		if st.Ranges[i].Tenant == tenant {
			return &st.Ranges[i]
		}
	}
	return nil
}

func (e entry) overlaps(r Range) bool {
	return span(e.UIDBase, e.Size).overlaps(span(r.UIDBase, r.Size)) ||
		span(e.GIDBase, e.Size).overlaps(span(r.GIDBase, r.Size))
}

// holders is the directory of tenant's holder files.
func (a *Allocator) holders(tenant string) string {
	return filepath.Join(a.dir, holdersDir, hex.EncodeToString([]byte(tenant)))
}

// hold records containerID as a holder of tenant's range: a hard link of the holder file, made
// with the tenant's directory on first use. Where no link can be made (the file's link count at
// the filesystem's limit, a filesystem without hard links) the holder is an empty file of its
// own: the allocator's readers only look at names.
func (a *Allocator) hold(tenant, containerID string) error {
	dir := a.holders(tenant)
	p := filepath.Join(dir, containerID)
	holder := filepath.Join(a.dir, holderFile)
	err := unix.Link(holder, p)
	if errors.Is(err, unix.ENOENT) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("record holder: %w", err)
		}
		if err := touch(holder); err == nil {
			err = unix.Link(holder, p)
		}
	}
	if err == nil || errors.Is(err, unix.EEXIST) {
		return nil
	}
	if err := touch(p); err != nil {
		return fmt.Errorf("record holder: %w", err)
	}
	return nil
}

// touch makes the empty file p unless it exists.
func touch(p string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

// held returns the bound ranges that have a holder.
func (a *Allocator) held(st *state) ([]Range, error) {
	var out []Range
	for _, e := range st.Ranges {
		names, err := readNames(a.holders(e.Tenant), 1)
		if err != nil {
			return nil, err
		}
		if len(names) > 0 {
			out = append(out, e.Range)
		}
	}
	return out, nil
}

// readNames returns up to n names in dir (all if n <= 0); none if dir does not exist.
func readNames(dir string, n int) ([]string, error) {
	d, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read holders: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(n)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read holders: %w", err)
	}
	return names, nil
}

// freeBase finds the lowest RangeSize-aligned base at or above firstBase whose range overlaps
// neither a held range nor a host subordinate id range, for uids and gids alike (one base
// serves both, which keeps ownership arithmetic simple for image layers).
func (a *Allocator) freeBase(held []Range) (uint32, error) {
	var taken []interval
	for _, r := range held {
		taken = append(taken, span(r.UIDBase, r.Size), span(r.GIDBase, r.Size))
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

// checkNames refuses a tenant or container id that cannot name a holder file.
func checkNames(tenant, containerID string) error {
	switch {
	case tenant == "" || containerID == "":
		return errors.New("tenant and container id must not be empty")
	case len(tenant) > 127:
		return fmt.Errorf("tenant %q: longer than 127 bytes", tenant)
	case len(containerID) > 255 || strings.Contains(containerID, "/") || containerID == "." || containerID == "..":
		return fmt.Errorf("container id %q cannot name a file", containerID)
	}
	return nil
}

// locked runs fn on the current state under the exclusive lock, after checking tenant and
// containerID (unless both are empty). A version 1 state is converted first.
func (a *Allocator) locked(tenant, containerID string, fn func(*state) error) error {
	if tenant != "" || containerID != "" {
		if err := checkNames(tenant, containerID); err != nil {
			return err
		}
	}
	// Both files are opened outside the runtime's poller (plainfile), on every create and delete.
	lf, err := plainfile.OpenFile(filepath.Join(a.dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open idmap lock: %w", err)
	}
	defer lf.Close() // closing releases the flock
	if err := lockExclusive(lf); err != nil {
		return err
	}
	st, err := a.load()
	if err != nil {
		return err
	}
	if st.Version == 1 {
		if err := a.convert(st); err != nil {
			return err
		}
	}
	return fn(st)
}

// convert turns a version 1 state's holder lists into holder files, then saves it as version 2.
// Interrupted, it is done again: the holder files are made before the lists go.
func (a *Allocator) convert(st *state) error {
	for i := range st.Ranges {
		e := &st.Ranges[i]
		for _, h := range e.Holders {
			if err := checkNames(e.Tenant, h); err != nil {
				return fmt.Errorf("%w: %v", ErrCorrupt, err)
			}
			if err := a.hold(e.Tenant, h); err != nil {
				return err
			}
		}
		e.Holders = nil
	}
	st.Version = stateVersion
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
	data, err := plainfile.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return &state{Version: stateVersion}, nil
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
	if st.Version != 1 && st.Version != stateVersion {
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
		case st.Version == 1 && len(e.Holders) == 0:
			return fmt.Errorf("range %d (tenant %q): no holders", i, e.Tenant)
		case st.Version == stateVersion && e.Holders != nil:
			return fmt.Errorf("range %d (tenant %q): holders listed in a version %d state", i, e.Tenant, st.Version)
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

// save replaces the state file atomically and durably (write, fsync, rename, fsync dir): a crash
// leaves either the old or the new state, never a torn file that would then read as corrupt.
func (a *Allocator) save(st *state) error {
	// A writer killed between CreateTemp and Rename leaves its temporary file behind (never read);
	// with the lock held, every temporary file present now is such a leftover. Looked for here,
	// where the state changes, not under every container's create and delete.
	if stale, err := filepath.Glob(filepath.Join(a.dir, ".ranges-*.json")); err == nil {
		for _, p := range stale {
			os.Remove(p)
		}
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode idmap state: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(a.dir, stateFile), append(data, '\n'), atomicfile.Options{Sync: true, SyncDir: true}); err != nil {
		return fmt.Errorf("write idmap state: %w", err)
	}
	return nil
}
