package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v2Manager keeps one directory in the unified hierarchy. The kernel interactions go through
// seams (write, mkdir, rmdir, attachDevices) so the exact file writes can be checked against a
// fake directory tree on hosts without usable v2.
type v2Manager struct {
	root, name, dir string

	write         func(dir, name, value string) error
	mkdir         func(dir string) error
	attachDevices func(dir string, rules []devRule) error
	rmdir         func(dir string) error
}

func (m *v2Manager) Hierarchies() []Hierarchy {
	return []Hierarchy{{Dir: m.dir, Unified: true}}
}

func newV2(root, name string) *v2Manager {
	return &v2Manager{
		root: root, name: name, dir: filepath.Join(root, name),
		write:         writeFile,
		mkdir:         func(d string) error { return os.Mkdir(d, 0o755) },
		attachDevices: attachDeviceProgram,
		rmdir:         removeDir,
	}
}

func (m *v2Manager) Paths() map[string]string { return map[string]string{"": m.dir} }

// JoinV1 does nothing: there is no v1 hierarchy (see Manager.JoinV1).
func (m *v2Manager) JoinV1() error { return nil }

// Create makes the leaf (see Manager.Create); the limits follow.
func (m *v2Manager) Create(res *specs.LinuxResources) (func() error, error) {
	return makeThenLimit(res, m.make, m.limit)
}

// make checks res and makes the leaf with the controllers res needs enabled above it. The leaf
// must be new (ErrExist); it is made last, so a failure leaves no leaf behind.
func (m *v2Manager) make(res *specs.LinuxResources) error {
	// Validate before touching the hierarchy.
	if err := checkUnified(res.Unified); err != nil {
		return err
	}
	if _, err := effectiveDevices(res.Devices); err != nil {
		return err
	}
	ctrls := controllersFor(res)
	// Enable only the controllers this container uses, level by level: on the "no internal
	// processes" v2 tree a controller must be on in every ancestor's cgroup.subtree_control.
	dir := m.root
	for _, part := range strings.Split(m.name, "/") {
		if err := m.enable(dir, ctrls); err != nil {
			return err
		}
		dir = filepath.Join(dir, part)
		err := m.mkdir(dir)
		switch {
		case errors.Is(err, os.ErrExist) && dir == m.dir:
			return fmt.Errorf("%w: %s", ErrExist, dir)
		case err != nil && !errors.Is(err, os.ErrExist):
			return fmt.Errorf("create cgroup: %w", err)
		}
	}
	return nil
}

// limit writes the limits of res and attaches the device program.
func (m *v2Manager) limit(res *specs.LinuxResources) error {
	rules, err := effectiveDevices(res.Devices)
	if err != nil {
		return err
	}
	for _, apply := range []func(*specs.LinuxResources) error{
		m.applyMemory, m.applyPids, m.applyCPU, m.applyIO, m.applyMisc, m.applyUnified,
	} {
		if err := apply(res); err != nil {
			return err
		}
	}
	if err := m.attachDevices(m.dir, rules); err != nil {
		return err
	}
	return nil
}

// controllersFor lists the v2 controllers res needs, sorted.
func controllersFor(res *specs.LinuxResources) []string {
	need := map[string]bool{}
	if res.Memory != nil {
		need["memory"] = true
	}
	if res.Pids != nil {
		need["pids"] = true
	}
	if c := res.CPU; c != nil {
		if c.Shares != nil || c.Quota != nil || c.Period != nil || c.Burst != nil || c.Idle != nil {
			need["cpu"] = true
		}
		if c.Cpus != "" || c.Mems != "" {
			need["cpuset"] = true
		}
	}
	if res.BlockIO != nil {
		need["io"] = true
	}
	if len(res.HugepageLimits) > 0 {
		need["hugetlb"] = true
	}
	if len(res.Rdma) > 0 {
		need["rdma"] = true
	}
	for k := range res.Unified {
		need[strings.SplitN(k, ".", 2)[0]] = true
	}
	out := make([]string, 0, len(need))
	for c := range need {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// enable turns ctrls on in dir's cgroup.subtree_control, failing if dir does not offer one.
func (m *v2Manager) enable(dir string, ctrls []string) error {
	if len(ctrls) == 0 {
		return nil
	}
	avail, err := readFile(dir, "cgroup.controllers")
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, c := range strings.Fields(avail) {
		have[c] = true
	}
	if miss := missing(have, ctrls); miss != nil {
		return fmt.Errorf("%w: cgroup %s lacks controllers %v", ErrUnsupported, dir, miss)
	}
	return m.write(dir, "cgroup.subtree_control", "+"+strings.Join(ctrls, " +"))
}

// checkUnified refuses unified keys that could escape the hierarchy or undo the floor: the
// memory, swap and pids limits are set from the structured fields, after WithDefaults.
func checkUnified(u map[string]string) error {
	for k := range u {
		switch {
		case strings.ContainsAny(k, "/\x00") || !strings.Contains(k, ".") || strings.HasPrefix(k, "."):
			return fmt.Errorf("linux.resources.unified key %q: not a cgroup interface file", k)
		case strings.HasPrefix(k, "cgroup."), k == "memory.max", k == "memory.swap.max", k == "pids.max":
			return fmt.Errorf("linux.resources.unified key %q: managed by the floor, use the structured field", k)
		}
	}
	return nil
}

func (m *v2Manager) applyMemory(res *specs.LinuxResources) error {
	mem := res.Memory
	if mem == nil {
		return nil
	}
	if mem.DisableOOMKiller != nil && *mem.DisableOOMKiller {
		return fmt.Errorf("%w: disableOOMKiller has no cgroup v2 equivalent", ErrUnsupported)
	}
	if mem.Swappiness != nil {
		return fmt.Errorf("%w: swappiness has no cgroup v2 equivalent", ErrUnsupported)
	}
	// Kernel and KernelTCP are ignored: v2 charges kernel memory to memory.max.
	if mem.Limit != nil {
		if err := m.write(m.dir, "memory.max", limitValue(*mem.Limit)); err != nil {
			return err
		}
	}
	if mem.Swap != nil {
		// The spec's swap is memory+swap (v1 memsw); v2 limits swap alone.
		swap := "max"
		if *mem.Swap >= 0 {
			if mem.Limit == nil || *mem.Limit < 0 || *mem.Swap < *mem.Limit {
				return fmt.Errorf("memory+swap limit %d needs a memory limit no larger than it", *mem.Swap)
			}
			swap = itoa(*mem.Swap - *mem.Limit)
		}
		if err := m.write(m.dir, "memory.swap.max", swap); err != nil {
			if !errors.Is(err, ErrUnsupported) || swap != "0" {
				return err
			}
			if err := noSwapInUse(); err != nil {
				return err
			}
		}
	}
	if mem.Reservation != nil {
		return m.write(m.dir, "memory.low", limitValue(*mem.Reservation))
	}
	return nil
}

// noSwapInUse accepts a missing swap controller only when the host has no swap at all, so a
// container cannot page past its memory limit.
func noSwapInUse() error {
	data, err := os.ReadFile("/proc/swaps")
	if err != nil {
		return fmt.Errorf("read /proc/swaps: %w", err)
	}
	if lines := strings.Split(strings.TrimSpace(string(data)), "\n"); len(lines) > 1 {
		return fmt.Errorf("%w: host has swap but no swap accounting to bound it", ErrUnsupported)
	}
	return nil
}

func limitValue(v int64) string {
	if v < 0 {
		return "max"
	}
	return itoa(v)
}

func (m *v2Manager) applyPids(res *specs.LinuxResources) error {
	if res.Pids == nil || res.Pids.Limit == nil {
		return nil
	}
	return m.write(m.dir, "pids.max", pidsValue(*res.Pids.Limit))
}

// sharesToWeight maps v1 cpu.shares [2, 262144] onto v2 cpu.weight [1, 10000] (the same
// conversion runc and crun use, so a spec means the same on either runtime).
func sharesToWeight(shares uint64) uint64 {
	shares = min(max(shares, 2), 262144)
	return 1 + (shares-2)*9999/262142
}

func (m *v2Manager) applyCPU(res *specs.LinuxResources) error {
	c := res.CPU
	if c == nil {
		return nil
	}
	if c.RealtimeRuntime != nil || c.RealtimePeriod != nil {
		return fmt.Errorf("%w: realtime cpu limits have no cgroup v2 equivalent", ErrUnsupported)
	}
	if shares, ok := cpuShares(c); ok {
		if err := m.write(m.dir, "cpu.weight", strconv.FormatUint(sharesToWeight(shares), 10)); err != nil {
			return err
		}
	}
	if c.Quota != nil || c.Period != nil {
		quota, period := "max", uint64(100000)
		if c.Quota != nil && *c.Quota > 0 {
			quota = itoa(*c.Quota)
		}
		if c.Period != nil && *c.Period != 0 {
			period = *c.Period
		}
		if err := m.write(m.dir, "cpu.max", fmt.Sprintf("%s %d", quota, period)); err != nil {
			return err
		}
	}
	if c.Burst != nil {
		if err := m.write(m.dir, "cpu.max.burst", strconv.FormatUint(*c.Burst, 10)); err != nil {
			return err
		}
	}
	if c.Idle != nil {
		if err := m.write(m.dir, "cpu.idle", itoa(*c.Idle)); err != nil {
			return err
		}
	}
	if c.Cpus != "" {
		if err := m.write(m.dir, "cpuset.cpus", c.Cpus); err != nil {
			return err
		}
	}
	if c.Mems != "" {
		return m.write(m.dir, "cpuset.mems", c.Mems)
	}
	return nil
}

// blkioToIOWeight maps v1 blkio.weight [10, 1000] onto v2 io.weight [1, 10000].
func blkioToIOWeight(w uint16) uint64 {
	v := uint64(min(max(w, 10), 1000))
	return 1 + (v-10)*9999/990
}

func (m *v2Manager) applyIO(res *specs.LinuxResources) error {
	b := res.BlockIO
	if b == nil {
		return nil
	}
	if b.LeafWeight != nil {
		return fmt.Errorf("%w: blockIO.leafWeight has no cgroup v2 equivalent", ErrUnsupported)
	}
	// BFQ takes the v1 weight scale directly; without BFQ, io.weight takes the converted value.
	bfq := exists(m.dir, "io.bfq.weight")
	weight := func(w uint16) (string, string) {
		if bfq {
			return "io.bfq.weight", strconv.Itoa(int(w))
		}
		return "io.weight", strconv.FormatUint(blkioToIOWeight(w), 10)
	}
	if b.Weight != nil && *b.Weight != 0 { // 0 is "not set", as in v1
		file, v := weight(*b.Weight)
		if err := m.write(m.dir, file, v); err != nil {
			return err
		}
	}
	for _, wd := range b.WeightDevice {
		if wd.LeafWeight != nil {
			return fmt.Errorf("%w: blockIO.weightDevice.leafWeight has no cgroup v2 equivalent", ErrUnsupported)
		}
		if wd.Weight != nil {
			file, v := weight(*wd.Weight)
			if err := m.write(m.dir, file, fmt.Sprintf("%d:%d %s", wd.Major, wd.Minor, v)); err != nil {
				return err
			}
		}
	}
	for _, t := range []struct {
		key  string
		devs []specs.LinuxThrottleDevice
	}{
		{"rbps", b.ThrottleReadBpsDevice},
		{"wbps", b.ThrottleWriteBpsDevice},
		{"riops", b.ThrottleReadIOPSDevice},
		{"wiops", b.ThrottleWriteIOPSDevice},
	} {
		for _, d := range t.devs {
			if err := m.write(m.dir, "io.max", fmt.Sprintf("%d:%d %s=%d", d.Major, d.Minor, t.key, d.Rate)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *v2Manager) applyMisc(res *specs.LinuxResources) error {
	if res.Network != nil && (res.Network.ClassID != nil || len(res.Network.Priorities) > 0) {
		return fmt.Errorf("%w: network classid/priorities have no cgroup v2 equivalent", ErrUnsupported)
	}
	for _, h := range res.HugepageLimits {
		if err := m.write(m.dir, "hugetlb."+h.Pagesize+".max", strconv.FormatUint(h.Limit, 10)); err != nil {
			return err
		}
	}
	devs := make([]string, 0, len(res.Rdma))
	for dev := range res.Rdma {
		devs = append(devs, dev)
	}
	sort.Strings(devs)
	for _, dev := range devs {
		if err := m.write(m.dir, "rdma.max", rdmaValue(dev, res.Rdma[dev])); err != nil {
			return err
		}
	}
	return nil
}

func (m *v2Manager) applyUnified(res *specs.LinuxResources) error {
	keys := make([]string, 0, len(res.Unified))
	for k := range res.Unified {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := m.write(m.dir, k, res.Unified[k]); err != nil {
			return err
		}
	}
	return nil
}

func (m *v2Manager) setFrozen(v string) error {
	if err := m.write(m.dir, "cgroup.freeze", v); err != nil {
		return err
	}
	err := waitFor(freezeTimeout, func() (bool, error) {
		n, err := readKey(m.dir, "cgroup.events", "frozen")
		return err == nil && strconv.FormatUint(n, 10) == v, err
	})
	if err != nil {
		return fmt.Errorf("set %s/cgroup.freeze=%s: %w", m.dir, v, err)
	}
	return nil
}

func (m *v2Manager) Freeze() error {
	if err := m.setFrozen("1"); err != nil {
		return errors.Join(err, m.Thaw())
	}
	return nil
}

func (m *v2Manager) Thaw() error { return m.setFrozen("0") }

func (m *v2Manager) Pids() ([]int, error) { return readPids(m.dir) }

func (m *v2Manager) Stats() (*Stats, error) {
	var s Stats
	var err error
	for _, r := range []struct {
		dst  *uint64
		file string
	}{
		{&s.MemoryUsage, "memory.current"},
		{&s.MemoryLimit, "memory.max"},
		{&s.PidsCurrent, "pids.current"},
		{&s.PidsLimit, "pids.max"},
	} {
		if *r.dst, err = readUint(m.dir, r.file); err != nil {
			return nil, err
		}
	}
	if s.MemoryPeak, s.OOMKills, err = m.ExitCounters(); err != nil {
		return nil, err
	}
	usec, err := readKey(m.dir, "cpu.stat", "usage_usec")
	if err != nil {
		return nil, err
	}
	s.CPUUsageNS = usec * 1000
	return &s, nil
}

func (m *v2Manager) ExitCounters() (peak, oomKills uint64, err error) {
	// memory.peak appeared in Linux 5.19; older kernels report current usage as the peak.
	peakFile := "memory.peak"
	if !exists(m.dir, peakFile) {
		peakFile = "memory.current"
	}
	if peak, err = readUint(m.dir, peakFile); err != nil {
		return 0, 0, err
	}
	oomKills, err = readKey(m.dir, "memory.events", "oom_kill")
	return peak, oomKills, err
}

func (m *v2Manager) Destroy() error {
	// Thaw first so a paused container's cgroup can be emptied and removed.
	if n, err := readKey(m.dir, "cgroup.events", "frozen"); err == nil && n == 1 {
		if err := m.Thaw(); err != nil {
			return err
		}
	}
	return m.rmdir(m.dir)
}
