package mac

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/opencontainers/selinux/go-selinux"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/atomicfile"
)

// The types used when the host policy does not name its own (SELinux disabled, or no
// lxc_contexts): those of container-selinux, which every SELinux distribution ships.
const (
	defaultProcessLabel = "system_u:system_r:container_t:s0"
	defaultMountLabel   = "system_u:object_r:container_file_t:s0"
)

// mcsCategories is the category range the pairs are drawn from. 1022/1023 are left out: the
// selinux library reserves that pair for privileged containers' mount label.
const mcsCategories = 1022

// LabelStore hands out one MCS pair per container and persists the reservations under the state
// root, so a pair stays taken across runtime processes (the CLI runs once per command) until the
// container is deleted. It is safe for concurrent use by several processes (flock).
type LabelStore struct {
	dir string
}

// OpenLabelStore opens (creating) the store in dir.
func OpenLabelStore(dir string) (*LabelStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create selinux label store %s: %w", dir, err)
	}
	return &LabelStore{dir: dir}, nil
}

// labelsFile maps container id -> labels.
type labelsFile map[string]SELinuxLabels

// Reserve returns the labels of container id, reserving a fresh unique MCS pair the first time.
// want may carry labels from the spec (process.selinuxLabel, linux.mountLabel): their user, role
// and type are kept; a level they carry is honoured only if no other container holds it.
func (s *LabelStore) Reserve(id string, want SELinuxLabels) (SELinuxLabels, error) {
	var out SELinuxLabels
	err := s.update(func(m labelsFile) (bool, error) {
		if l, ok := m[id]; ok {
			out = l
			return false, nil
		}
		proc, mnt, err := baseContexts(want)
		if err != nil {
			return false, err
		}
		used := make(map[string]bool, len(m))
		for _, l := range m {
			used[l.Level()] = true
		}
		level := proc["level"]
		if strings.Contains(level, ":c") {
			if err := checkPair(level); err != nil {
				return false, fmt.Errorf("selinux label of %s: %w", id, err)
			}
			if used[level] {
				return false, fmt.Errorf("selinux level %s requested by %s: %w", level, id, selinux.ErrMCSAlreadyExists)
			}
		} else if level, err = freshLevel(used); err != nil {
			return false, err
		}
		proc["level"], mnt["level"] = level, level
		out = SELinuxLabels{Process: proc.Get(), Mount: mnt.Get()}
		m[id] = out
		return true, nil
	})
	if err != nil {
		return SELinuxLabels{}, err
	}
	// Mirror into the selinux library's in-process bookkeeping so that nothing else in this
	// process (label.InitLabels) hands out the same level.
	selinux.ReserveLabel(out.Process)
	return out, nil
}

// Release frees container id's pair for reuse; releasing an unknown id is not an error (delete is
// idempotent).
func (s *LabelStore) Release(id string) error {
	return s.update(func(m labelsFile) (bool, error) {
		l, ok := m[id]
		if ok {
			selinux.ReleaseLabel(l.Process)
			delete(m, id)
		}
		return ok, nil
	})
}

// List returns the current reservations by container id.
func (s *LabelStore) List() (map[string]SELinuxLabels, error) {
	var out labelsFile
	err := s.update(func(m labelsFile) (bool, error) { out = m; return false, nil })
	return out, err
}

// A spec may ask only for the confined container types of container-selinux (or the policy's own
// container types from lxc_contexts): spc_t ("super privileged container"), unconfined_t and the
// like would run the workload outside the policy's container confinement, below the floor.
var (
	processTypes = []string{"container_t", "container_init_t", "container_kvm_t"}
	mountTypes   = []string{"container_file_t", "container_ro_file_t"}
)

func baseContexts(want SELinuxLabels) (proc, mnt selinux.Context, err error) {
	hp, hm := hostContainerLabels()
	hp, hm = cmpOr(hp, defaultProcessLabel), cmpOr(hm, defaultMountLabel)
	if proc, err = parseLabel(want.Process, hp, processTypes); err != nil {
		return nil, nil, fmt.Errorf("selinux process label: %w", err)
	}
	if mnt, err = parseLabel(want.Mount, hm, mountTypes); err != nil {
		return nil, nil, fmt.Errorf("selinux mount label: %w", err)
	}
	return proc, mnt, nil
}

// parseLabel parses the requested label, or the host default when none was requested, and checks
// that a requested type is one of allowed or the host default's.
func parseLabel(requested, host string, allowed []string) (selinux.Context, error) {
	hc, err := selinux.NewContext(host)
	if err != nil {
		return nil, fmt.Errorf("host label %q: %w", host, err)
	}
	if requested == "" {
		return hc, nil
	}
	c, err := selinux.NewContext(requested)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", requested, err)
	}
	if t := c["type"]; t != hc["type"] && !slices.Contains(allowed, t) {
		return nil, fmt.Errorf("%q: type %s is not a confined container type (allowed: %s, %s)",
			requested, t, hc["type"], strings.Join(allowed, ", "))
	}
	return c, nil
}

// hostContainerLabels returns the policy's container process and file labels (lxc_contexts),
// without the level the library picked, which it reserved in memory and is released here.
func hostContainerLabels() (string, string) {
	p, m := selinux.ContainerLabels()
	selinux.ReleaseLabel(p)
	return p, m
}

func cmpOr(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// pairLevel is compiled on first use: every runtime process and every setup child starts this
// package, and few ever check a level.
var pairLevel = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^s0:c([0-9]{1,4}),c([0-9]{1,4})$`)
})

// checkPair accepts only a level of exactly two categories, "s0:cA,cB" with A < B < 1024. A range
// or a category set ("s0-s0:c0.c1023") requested by a spec would dominate other containers'
// levels and undo the MCS separation.
func checkPair(level string) error {
	m := pairLevel().FindStringSubmatch(level)
	if m == nil {
		return fmt.Errorf("level %q: only a category pair s0:cA,cB is allowed", level)
	}
	a, _ := strconv.Atoi(m[1])
	b, _ := strconv.Atoi(m[2])
	if a >= b || b >= 1024 {
		return fmt.Errorf("level %q: want cA < cB < c1024", level)
	}
	return nil
}

// freshLevel draws a random pair "s0:cA,cB" (A < B) not in used. Random, as the selinux library
// does, so levels are not predictable from the order containers were created.
func freshLevel(used map[string]bool) (string, error) {
	const maxTries = 10000
	for range maxTries {
		a, b := rand.IntN(mcsCategories), rand.IntN(mcsCategories)
		if a == b {
			continue
		}
		if a > b {
			a, b = b, a
		}
		level := fmt.Sprintf("s0:c%d,c%d", a, b)
		if !used[level] {
			return level, nil
		}
	}
	return "", fmt.Errorf("no free selinux MCS pair after %d tries (%d in use)", maxTries, len(used))
}

// update runs fn on the reservations under an exclusive lock and, if fn reports a change, writes
// them back atomically (temporary file and rename, so a crash never leaves a torn store).
func (s *LabelStore) update(fn func(labelsFile) (changed bool, err error)) error {
	lock, err := os.OpenFile(filepath.Join(s.dir, "selinux.lock"), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("open selinux label lock: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock selinux label store: %w", err)
	}
	path := filepath.Join(s.dir, "selinux.json")
	m := labelsFile{}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("read selinux label store: %w", err)
	default:
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("parse selinux label store %s: %w", path, err)
		}
	}
	changed, err := fn(m)
	if err != nil || !changed {
		return err
	}
	b, err = json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode selinux label store: %w", err)
	}
	if err := atomicfile.Write(path, b, atomicfile.Options{}); err != nil {
		return fmt.Errorf("write selinux label store: %w", err)
	}
	return nil
}
