// Package cgroups places a container's processes in their own cgroup and enforces its resource
// limits, on cgroup v2 where the unified hierarchy has the controllers the floor needs and on v1
// otherwise. Device access is always deny-all plus the minimal /dev set.
package cgroups

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Manager owns one container's cgroup (one leaf directory per hierarchy on v1, one on v2).
type Manager interface {
	// Create makes the cgroup and returns once processes may join it (on v1: cpuset filled in,
	// notify_on_release clear, the device allowlist written); the limits in res (normally the
	// output of WithDefaults), the device allowlist included (deny all, then allow only the
	// minimal /dev set), are all written by the time limits returns, or it returns the first
	// error. The caller waits
	// for limits before anything of the container's runs in the cgroup, and destroys the cgroup
	// if it fails. A failed Create leaves nothing behind. A cgroup that exists already (its leaf
	// in any hierarchy) is refused with ErrExist and left as it is: it is never adopted.
	Create(res *specs.LinuxResources) (limits func() error, err error)
	// Freeze stops every process in the cgroup and returns once the kernel reports it frozen.
	Freeze() error
	// Thaw resumes a frozen cgroup.
	Thaw() error
	// Pids lists the processes in the cgroup (none if the cgroup does not exist).
	Pids() ([]int, error)
	// Stats reads current usage counters.
	Stats() (*Stats, error)
	// ExitCounters reads only the two counters the record of a container's exit carries: its
	// peak memory and how many of its processes the kernel OOM killer killed.
	ExitCounters() (peak, oomKills uint64, err error)
	// Destroy removes the cgroup directories. It is idempotent and tolerates directories already
	// gone, so it also cleans up after a crash mid-create. It thaws a frozen cgroup; the caller
	// must have killed every process first.
	Destroy() error
	// Paths maps controller name to directory (v1), or "" to the single directory (v2).
	Paths() map[string]string
	// JoinV1 moves the calling OS thread into the container's leaf in every v1 hierarchy ("0"
	// written to each tasks file: the kernel moves the writer alone, without its global lock), so
	// that a process it forks starts there; nothing on v2, whose leaf a process is forked into
	// (clone3's CLONE_INTO_CGROUP), as a hybrid host's unified one is.
	JoinV1() error
	// Hierarchies lists every hierarchy the container's processes are placed in, with its
	// leaf: on v1 also the named (name=systemd) and a hybrid host's unified hierarchy, which
	// carry no limits but would otherwise leave the container in the host's root cgroup there.
	Hierarchies() []Hierarchy
}

// Hierarchy is one cgroup hierarchy a container is placed in and may see (its own subtree,
// through its cgroup namespace) at /sys/fs/cgroup/<Name>.
type Hierarchy struct {
	// Dir is the container's leaf directory on the host.
	Dir string `json:"dir"`
	// Unified marks a cgroup2 hierarchy: processes join through cgroup.procs, v1 through tasks.
	Unified bool `json:"unified,omitempty"`
	// Options name a v1 hierarchy when mounting it ("cpu", "cpu,cpuacct", "name=systemd").
	Options string `json:"options,omitempty"`
	// Name is the base name of the hierarchy's mount point ("memory", "systemd", "unified");
	// "" for a pure v2 host, whose single hierarchy is /sys/fs/cgroup itself.
	Name string `json:"name,omitempty"`
}

// Stats is a snapshot of a cgroup's counters.
type Stats struct {
	MemoryUsage uint64 `json:"memoryUsage"`
	MemoryPeak  uint64 `json:"memoryPeak"`
	// MemoryLimit is 0 when there is no limit.
	MemoryLimit uint64 `json:"memoryLimit"`
	OOMKills    uint64 `json:"oomKills"`
	PidsCurrent uint64 `json:"pidsCurrent"`
	// PidsLimit is 0 when there is no limit.
	PidsLimit  uint64 `json:"pidsLimit"`
	CPUUsageNS uint64 `json:"cpuUsageNs"`
}

// ErrUnsupported is wrapped by errors for a limit the host's cgroup setup cannot enforce. The
// floor fails closed on it: a requested limit that cannot be applied stops the container.
var ErrUnsupported = errors.New("cgroup limit not supported on this host")

// ErrExist is wrapped by Create's error when the cgroup's leaf already exists in a hierarchy.
var ErrExist = errors.New("cgroup exists")

// cpuShares returns the cpu.shares to apply and whether there is one. 0 means unset in both
// hierarchies: Docker sends "shares": 0 for a container without --cpu-shares, and writing it
// would give the kernel's minimum (2), the lowest CPU priority on the host.
func cpuShares(c *specs.LinuxCPU) (uint64, bool) {
	if c == nil || c.Shares == nil || *c.Shares == 0 {
		return 0, false
	}
	return *c.Shares, true
}

// New returns a Manager for the cgroup name (relative, e.g. "bulwark/<id>") below each hierarchy's
// mount. It picks v2 when the unified hierarchy has the needed controllers and v1 otherwise.
func New(name string) (Manager, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	h, err := detect()
	if err != nil {
		return nil, err
	}
	if h.v2 != "" {
		return newV2(h.v2, name), nil
	}
	m := newV1(h.v1, name)
	m.placeIn(h.named, h.unified)
	return m, nil
}

// validName refuses names that could leave the hierarchy (e.g. "../../x").
func validName(name string) error {
	if name == "" || filepath.IsAbs(name) || filepath.Clean(name) != name || strings.HasPrefix(name, "..") {
		return fmt.Errorf("cgroup name %q: must be a clean relative path", name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." || part == "." {
			return fmt.Errorf("cgroup name %q: must not contain a \".\" or \"..\" part", name)
		}
	}
	return nil
}

// makeThenLimit runs a manager's mk (its make, which leaves nothing behind when it fails) with
// res (no limits when nil), then its limit in the background: the limits are written while the
// caller starts the container's first process (issue 14).
func makeThenLimit(res *specs.LinuxResources, mk, limit func(*specs.LinuxResources) error) (func() error, error) {
	if res == nil {
		res = &specs.LinuxResources{}
	}
	if err := mk(res); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	var err error
	go func() {
		defer close(done)
		err = limit(res)
	}()
	return func() error {
		<-done
		return err
	}, nil
}
