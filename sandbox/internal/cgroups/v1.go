package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// v1Manager keeps one leaf directory per mounted v1 hierarchy. Named hierarchies (name=systemd)
// and a hybrid host's unified (v2) hierarchy carry no limits, but the container gets a leaf in
// them too: left in their root, its processes would be listed in the host's root cgroup.procs and
// a /sys/fs/cgroup mount inside would show host-wide counters (issue 8 §6).
type v1Manager struct {
	name   string
	mounts map[string]string // controller -> hierarchy mount point
	paths  map[string]string // controller -> leaf directory
	// placed are the leaves in hierarchies without limits: named ("name=systemd") and
	// "" for the unified hierarchy -> Hierarchy.
	placed map[string]Hierarchy
	tasks  tasksFiles
}

// tasksFiles hands the tasks files of a new container's v1 leaves, opened in the background once
// the leaves are made (limit), to the thread that joins them (JoinV1) a moment later: the opens
// (each leaf's directory looked up, listed once for its files' ids, the file opened by handle)
// are then off the path to the child's start, and the join only writes (issue 14). The two go
// through the leaves from opposite ends, each opening the files the other has not claimed, so
// that a join that comes early neither waits nor opens a file twice (but the one both may be at).
type tasksFiles struct {
	mu      sync.Mutex
	fds     map[string]int  // leaf directory -> its tasks file, opened, not taken yet; guarded by mu
	claimed map[string]bool // leaf directories whose file is being, or was, opened; guarded by mu
	// done: the join (or Destroy) is over; files opened after are closed at once. Guarded by mu.
	done bool
}

// open opens the tasks file of each of dirs, in order, for the join: those it has not claimed.
func (t *tasksFiles) open(dirs []string) {
	for _, d := range dirs {
		t.mu.Lock()
		if t.done {
			t.mu.Unlock()
			return
		}
		if t.claimed[d] {
			t.mu.Unlock()
			continue
		}
		if t.claimed == nil {
			t.claimed = map[string]bool{}
		}
		t.claimed[d] = true
		t.mu.Unlock()
		fd, err := openLeaf(d, "tasks", unix.O_WRONLY)
		if err != nil {
			continue // the join opens it again and reports the error
		}
		t.mu.Lock()
		if t.done {
			unix.Close(fd)
		} else {
			if t.fds == nil {
				t.fds = map[string]int{}
			}
			t.fds[d] = fd
		}
		t.mu.Unlock()
	}
}

// take returns the file open for dir, if any, for the caller to write and close; if none is
// being opened, it is claimed for the caller to open.
func (t *tasksFiles) take(dir string) (int, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if fd, ok := t.fds[dir]; ok {
		delete(t.fds, dir)
		return fd, true
	}
	if t.claimed == nil {
		t.claimed = map[string]bool{}
	}
	t.claimed[dir] = true
	return -1, false
}

// finish ends the handing over: the files opened and not taken are closed, as is any opened
// later.
func (t *tasksFiles) finish() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, fd := range t.fds {
		unix.Close(fd)
	}
	t.fds, t.done = nil, true
}

// placeIn adds the named hierarchies (option -> mount point) and the unified mount point ("" if
// none) the container is placed in without limits.
func (m *v1Manager) placeIn(named map[string]string, unified string) {
	for opt, mnt := range named {
		m.placed[opt] = Hierarchy{Dir: filepath.Join(mnt, m.name), Options: opt, Name: filepath.Base(mnt)}
	}
	if unified != "" {
		m.placed[""] = Hierarchy{Dir: filepath.Join(unified, m.name), Unified: true, Name: filepath.Base(unified)}
	}
}

// Hierarchies lists the controller hierarchies (co-mounted controllers once, their options
// joined) and then the placed ones, in a stable order.
func (m *v1Manager) Hierarchies() []Hierarchy {
	byMount := map[string][]string{}
	for ctrl, mnt := range m.mounts {
		byMount[mnt] = append(byMount[mnt], ctrl)
	}
	var out []Hierarchy
	for mnt, ctrls := range byMount {
		sort.Strings(ctrls)
		out = append(out, Hierarchy{Dir: filepath.Join(mnt, m.name), Options: strings.Join(ctrls, ","), Name: filepath.Base(mnt)})
	}
	for _, h := range m.placed {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Dir < out[j].Dir })
	return out
}

func newV1(mounts map[string]string, name string) *v1Manager {
	m := &v1Manager{name: name, mounts: mounts, paths: map[string]string{}, placed: map[string]Hierarchy{}}
	for ctrl, mnt := range mounts {
		m.paths[ctrl] = filepath.Join(mnt, name)
	}
	return m
}

// dirs returns each leaf directory once (co-mounted controllers such as cpu,cpuacct share one).
func (m *v1Manager) dirs() []string {
	seen := map[string]bool{}
	var out []string
	for _, d := range m.paths {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	sort.Strings(out)
	return out
}

// v1Dirs are the leaves in every v1 hierarchy, named ones included.
func (m *v1Manager) v1Dirs() []string {
	out := m.dirs()
	for _, h := range m.placed {
		if !h.Unified {
			out = append(out, h.Dir)
		}
	}
	return out
}

// allDirs are every leaf the container has, in every hierarchy.
func (m *v1Manager) allDirs() []string {
	out := m.dirs()
	for _, h := range m.placed {
		out = append(out, h.Dir)
	}
	return out
}

func (m *v1Manager) dir(ctrl string) (string, error) {
	d, ok := m.paths[ctrl]
	if !ok {
		return "", fmt.Errorf("%w: no v1 %s hierarchy mounted", ErrUnsupported, ctrl)
	}
	return d, nil
}

func (m *v1Manager) Paths() map[string]string {
	out := make(map[string]string, len(m.paths))
	for k, v := range m.paths {
		out[k] = v
	}
	return out
}

// Create makes the leaf in every hierarchy (see Manager.Create); the limits follow.
func (m *v1Manager) Create(res *specs.LinuxResources) (func() error, error) {
	return makeThenLimit(res, m.make, m.limit)
}

// make makes the leaves, with what must hold before any task joins: cpuset.cpus and cpuset.mems
// filled in (an empty cpuset refuses tasks), notify_on_release clear, and the device allowlist —
// the thread that joins and forks the container's first process opens /dev/null there, and
// between devices.deny and devices.allow nothing can be opened.
//
// The leaves are made one after another: the kernel makes cgroups under one global mutex
// (cgroup_mutex), so making them at once bought little (0.07 ms on an idle host) for a goroutine
// and often a thread each, spinning on that mutex — CPU the rest of a container's start needs
// (issue 14). The devices leaf goes first and its allowlist is written meanwhile (its files and
// lock are its own); each other leaf's notify_on_release is seen to right after its mkdir. Each
// leaf must be new: one that exists is another cgroup's, refused (ErrExist) and left alone — the
// mkdir is the check, with no look before it. On any other failure the leaves made so far, the
// failed one's too, are removed again.
func (m *v1Manager) make(res *specs.LinuxResources) (err error) {
	if len(res.Unified) > 0 {
		return fmt.Errorf("%w: linux.resources.unified needs cgroup v2", ErrUnsupported)
	}
	devices := make(chan error, 1)
	started := false
	var made []string
	defer func() {
		if started {
			err = errors.Join(err, <-devices)
		}
		if err == nil {
			return
		}
		for _, d := range made {
			if rerr := removeDir(d); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
	}()
	cpuset, devicesDir := m.paths["cpuset"], m.paths["devices"]
	if devicesDir == "" {
		return m.applyDevices(res) // no devices hierarchy: refused
	}
	for _, h := range m.leaves(devicesDir) {
		var err error
		if h.Dir == cpuset {
			err = mkdirCpuset(m.mounts["cpuset"], m.name)
		} else {
			err = mkdirLeaf(h.Dir)
		}
		if !errors.Is(err, ErrExist) {
			made = append(made, h.Dir) // on failure too: a cpuset leaf made and not filled in
		}
		if err == nil && h.Dir == devicesDir {
			started = true
			go func() { devices <- m.applyDevices(res) }()
		}
		if err == nil && !h.Unified {
			err = clearNotifyOnRelease(h.Dir)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// leaves lists the container's leaf in every hierarchy, the one in first first.
func (m *v1Manager) leaves(first string) []Hierarchy {
	out := []Hierarchy{{Dir: first}}
	for _, d := range m.dirs() {
		if d != first {
			out = append(out, Hierarchy{Dir: d})
		}
	}
	for _, h := range m.placed {
		out = append(out, h)
	}
	return out
}

// limit opens the leaves' tasks files for the join (tasksFiles), then writes the other limits
// of res, one after another: it runs in the background while the container's first process
// starts (makeThenLimit), and a goroutine for each would only take CPU from that start.
func (m *v1Manager) limit(res *specs.LinuxResources) error {
	m.tasks.open(m.v1Dirs())
	var errs []error
	for _, apply := range []func(*specs.LinuxResources) error{
		m.applyMemory, m.applyPids, m.applyCPU, m.applyCpuset, m.applyBlkio, m.applyHugetlb,
		m.applyNetwork, m.applyRdma,
	} {
		errs = append(errs, apply(res))
	}
	return errors.Join(errs...)
}

// clearNotifyOnRelease makes sure the leaf dir has notify_on_release clear (CVE-2022-0492: the v1
// release agent runs as host root when a cgroup with the flag set empties, so a container can never
// be the trigger of a host-side release_agent). A leaf takes the flag from its parent at mkdir, so
// where the parent's is clear (Bulwark's own parent's is) the leaf's is too and is left alone; only
// a leaf under a parent with the flag set is cleared itself. Every cgroupfs file looked up stays in
// the host's inode and dentry caches as long as its cgroup lives (~0.8 kB each): the parent's is one
// for all containers, the leaf's one per container and hierarchy. The parent is read after the
// leaf's mkdir; only host root (or whoever the parent is delegated to, who can make cgroups with the
// flag set there anyway) can change the parent's flag in between.
func clearNotifyOnRelease(dir string) error {
	if v, err := readFile(filepath.Dir(dir), "notify_on_release"); err == nil && v == "0" {
		return nil
	}
	return writeLeaf(dir, "notify_on_release", "0")
}

// mkdirLeaf makes the leaf dir, and its missing parents only when there are some: on the common
// path only the leaf is new, and MkdirAll's checks of every level cost more than the mkdir
// itself. A leaf that exists is refused (ErrExist).
func mkdirLeaf(dir string) error {
	err := os.Mkdir(dir, 0o755)
	if errors.Is(err, os.ErrNotExist) {
		if err = os.MkdirAll(filepath.Dir(dir), 0o755); err == nil {
			err = os.Mkdir(dir, 0o755)
		}
	}
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%w: %s", ErrExist, dir)
	}
	if err != nil {
		return fmt.Errorf("create cgroup: %w", err)
	}
	return nil
}

// mkdirCpuset makes the leaf below the cpuset mount with cpuset.cpus and cpuset.mems copied from
// its parent: a v1 cpuset cgroup starts with both empty and refuses tasks until they are set.
// Where the leaf's parent is missing or has none set itself, every level is made and filled in
// from the top (fillCpuset). A leaf that exists is refused (ErrExist).
func mkdirCpuset(mnt, name string) error {
	leaf := filepath.Join(mnt, name)
	if err := os.Mkdir(leaf, 0o755); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%w: %s", ErrExist, leaf)
		}
		return fillCpuset(mnt, name, false)
	}
	parent := filepath.Dir(leaf)
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		val, err := readFile(parent, f)
		if err != nil {
			return err
		}
		if val == "" {
			return fillCpuset(mnt, name, true)
		}
		if err := writeLeaf(leaf, f, val); err != nil {
			return err
		}
	}
	return nil
}

// fillCpuset creates each level below the cpuset mount, copying cpuset.cpus and cpuset.mems from
// the parent into any level that has none. The leaf must be new unless the caller made it
// (leafMade): one made meanwhile is another cgroup's (ErrExist).
func fillCpuset(mnt, name string, leafMade bool) error {
	dir := mnt
	parts := strings.Split(name, "/")
	for i, part := range parts {
		parent := dir
		dir = filepath.Join(dir, part)
		leaf := i == len(parts)-1
		err := os.Mkdir(dir, 0o755)
		switch {
		case errors.Is(err, os.ErrExist) && leaf && !leafMade:
			return fmt.Errorf("%w: %s", ErrExist, dir)
		case err != nil && !errors.Is(err, os.ErrExist):
			return fmt.Errorf("create cgroup: %w", err)
		}
		read, write := readFile, writeValues
		if leaf {
			read, write = readLeaf, writeLeaf
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			cur, err := read(dir, f)
			if err != nil {
				return err
			}
			if cur != "" {
				continue
			}
			val, err := readFile(parent, f)
			if err != nil {
				return err
			}
			if err := write(dir, f, val); err != nil {
				return err
			}
		}
	}
	return nil
}

// applyDevices denies everything, then allows the floor set (minus the spec's deny rules), and
// reads devices.list back so a kernel that silently ignored a write cannot leave access open.
func (m *v1Manager) applyDevices(res *specs.LinuxResources) error {
	dir, err := m.dir("devices")
	if err != nil {
		return err
	}
	rules, err := effectiveDevices(res.Devices)
	if err != nil {
		return err
	}
	if err := writeLeaf(dir, "devices.deny", "a"); err != nil {
		return err
	}
	want := map[string]bool{}
	var allow []string
	for _, r := range rules {
		allow = append(allow, r.String())
		want[r.String()] = true
	}
	if err := writeLeaf(dir, "devices.allow", allow...); err != nil {
		return err
	}
	list, err := readLeaf(dir, "devices.list")
	if err != nil {
		return err
	}
	got := strings.Split(list, "\n")
	if list == "" {
		got = nil
	}
	for _, l := range got {
		if !want[l] {
			return fmt.Errorf("device cgroup %s: unexpected entry %q after applying the allowlist", dir, l)
		}
	}
	if len(got) != len(want) {
		return fmt.Errorf("device cgroup %s: have %d entries, want %d", dir, len(got), len(want))
	}
	return nil
}

func (m *v1Manager) applyMemory(res *specs.LinuxResources) error {
	mem := res.Memory
	if mem == nil {
		return nil
	}
	dir, err := m.dir("memory")
	if err != nil {
		return err
	}
	// memory.limit_in_bytes before memsw: the kernel keeps limit <= memsw, and a new cgroup
	// starts with both unlimited.
	if mem.Limit != nil {
		if err := writeLeaf(dir, "memory.limit_in_bytes", itoa(*mem.Limit)); err != nil {
			return err
		}
	}
	if mem.Swap != nil {
		// Written without a look first: a stat by path would keep the file's dentry cached.
		switch err := writeLeaf(dir, "memory.memsw.limit_in_bytes", itoa(*mem.Swap)); {
		case err == nil:
		case !errors.Is(err, ErrUnsupported):
			return err
		case mem.Limit == nil || *mem.Swap != *mem.Limit:
			// Without swap accounting the kernel cannot bound memory+swap.
			return fmt.Errorf("%w: swap limit %d needs memory.memsw (swap accounting)", ErrUnsupported, *mem.Swap)
		default:
			if err := noSwapInUse(); err != nil {
				return err
			}
		}
	}
	// Kernel (kmem) limits are not written: current kernels accept and ignore the write, and charge
	// kernel memory to memory.limit_in_bytes anyway.
	files := []struct {
		set  bool
		name string
		val  func() string
	}{
		{mem.Reservation != nil, "memory.soft_limit_in_bytes", func() string { return itoa(*mem.Reservation) }},
		{mem.KernelTCP != nil, "memory.kmem.tcp.limit_in_bytes", func() string { return itoa(*mem.KernelTCP) }},
		{mem.Swappiness != nil, "memory.swappiness", func() string { return strconv.FormatUint(*mem.Swappiness, 10) }},
		{mem.DisableOOMKiller != nil && *mem.DisableOOMKiller, "memory.oom_control", func() string { return "1" }},
	}
	for _, f := range files {
		if f.set {
			if err := writeLeaf(dir, f.name, f.val()); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *v1Manager) applyPids(res *specs.LinuxResources) error {
	if res.Pids == nil || res.Pids.Limit == nil {
		return nil
	}
	dir, err := m.dir("pids")
	if err != nil {
		return err
	}
	return writeLeaf(dir, "pids.max", pidsValue(*res.Pids.Limit))
}

func pidsValue(limit int64) string {
	if limit <= 0 {
		return "max"
	}
	return itoa(limit)
}

func (m *v1Manager) applyCPU(res *specs.LinuxResources) error {
	c := res.CPU
	if c == nil {
		return nil
	}
	dir, err := m.dir("cpu")
	if err != nil {
		return err
	}
	shares, haveShares := cpuShares(c)
	type kv struct {
		set  bool
		name string
		val  func() string
	}
	// Period before quota: the kernel checks quota against the current period.
	for _, f := range []kv{
		{haveShares, "cpu.shares", func() string { return strconv.FormatUint(shares, 10) }},
		{c.Period != nil, "cpu.cfs_period_us", func() string { return strconv.FormatUint(*c.Period, 10) }},
		{c.Quota != nil, "cpu.cfs_quota_us", func() string { return itoa(max(*c.Quota, -1)) }},
		{c.Burst != nil, "cpu.cfs_burst_us", func() string { return strconv.FormatUint(*c.Burst, 10) }},
		{c.RealtimePeriod != nil, "cpu.rt_period_us", func() string { return strconv.FormatUint(*c.RealtimePeriod, 10) }},
		{c.RealtimeRuntime != nil, "cpu.rt_runtime_us", func() string { return itoa(*c.RealtimeRuntime) }},
		{c.Idle != nil, "cpu.idle", func() string { return itoa(*c.Idle) }},
	} {
		if f.set {
			if err := writeLeaf(dir, f.name, f.val()); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *v1Manager) applyCpuset(res *specs.LinuxResources) error {
	if res.CPU == nil || res.CPU.Cpus == "" && res.CPU.Mems == "" {
		return nil
	}
	dir, err := m.dir("cpuset")
	if err != nil {
		return err
	}
	if res.CPU.Cpus != "" {
		if err := writeLeaf(dir, "cpuset.cpus", res.CPU.Cpus); err != nil {
			return err
		}
	}
	if res.CPU.Mems != "" {
		return writeLeaf(dir, "cpuset.mems", res.CPU.Mems)
	}
	return nil
}

func (m *v1Manager) applyBlkio(res *specs.LinuxResources) error {
	b := res.BlockIO
	if b == nil {
		return nil
	}
	dir, err := m.dir("blkio")
	if err != nil {
		return err
	}
	// CFQ is gone from current kernels; BFQ exposes the same knobs under a blkio.bfq. prefix.
	// A weight is a proportional share, not a bound: it only acts on disks BFQ schedules, which
	// the kernel does not check. The throttles below are the hard limits.
	weightFile := func(base string) string {
		if exists(dir, "blkio."+base) {
			return "blkio." + base
		}
		return "blkio.bfq." + base
	}
	// Weight 0 means "not set" (Docker's spec always carries blockIO.weight, 0 unless
	// --blkio-weight is given; runc skips 0 too): the kernel refuses 0 with ERANGE.
	if b.Weight != nil && *b.Weight != 0 {
		if err := writeLeaf(dir, weightFile("weight"), strconv.Itoa(int(*b.Weight))); err != nil {
			return err
		}
	}
	if b.LeafWeight != nil && *b.LeafWeight != 0 {
		if err := writeLeaf(dir, "blkio.leaf_weight", strconv.Itoa(int(*b.LeafWeight))); err != nil {
			return err
		}
	}
	for _, wd := range b.WeightDevice {
		if wd.Weight != nil {
			v := fmt.Sprintf("%d:%d %d", wd.Major, wd.Minor, *wd.Weight)
			if err := writeLeaf(dir, weightFile("weight_device"), v); err != nil {
				return err
			}
		}
		if wd.LeafWeight != nil {
			v := fmt.Sprintf("%d:%d %d", wd.Major, wd.Minor, *wd.LeafWeight)
			if err := writeLeaf(dir, "blkio.leaf_weight_device", v); err != nil {
				return err
			}
		}
	}
	for _, t := range []struct {
		file string
		devs []specs.LinuxThrottleDevice
	}{
		{"blkio.throttle.read_bps_device", b.ThrottleReadBpsDevice},
		{"blkio.throttle.write_bps_device", b.ThrottleWriteBpsDevice},
		{"blkio.throttle.read_iops_device", b.ThrottleReadIOPSDevice},
		{"blkio.throttle.write_iops_device", b.ThrottleWriteIOPSDevice},
	} {
		for _, d := range t.devs {
			if err := writeLeaf(dir, t.file, fmt.Sprintf("%d:%d %d", d.Major, d.Minor, d.Rate)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *v1Manager) applyHugetlb(res *specs.LinuxResources) error {
	for _, h := range res.HugepageLimits {
		dir, err := m.dir("hugetlb")
		if err != nil {
			return err
		}
		if err := writeLeaf(dir, "hugetlb."+h.Pagesize+".limit_in_bytes", strconv.FormatUint(h.Limit, 10)); err != nil {
			return err
		}
	}
	return nil
}

func (m *v1Manager) applyNetwork(res *specs.LinuxResources) error {
	n := res.Network
	if n == nil {
		return nil
	}
	if n.ClassID != nil {
		dir, err := m.dir("net_cls")
		if err != nil {
			return err
		}
		if err := writeLeaf(dir, "net_cls.classid", strconv.FormatUint(uint64(*n.ClassID), 10)); err != nil {
			return err
		}
	}
	for _, p := range n.Priorities {
		dir, err := m.dir("net_prio")
		if err != nil {
			return err
		}
		if err := writeLeaf(dir, "net_prio.ifpriomap", fmt.Sprintf("%s %d", p.Name, p.Priority)); err != nil {
			return err
		}
	}
	return nil
}

func (m *v1Manager) applyRdma(res *specs.LinuxResources) error {
	for dev, r := range res.Rdma {
		dir, err := m.dir("rdma")
		if err != nil {
			return err
		}
		if err := writeLeaf(dir, "rdma.max", rdmaValue(dev, r)); err != nil {
			return err
		}
	}
	return nil
}

func rdmaValue(dev string, r specs.LinuxRdma) string {
	v := dev
	if r.HcaHandles != nil {
		v += fmt.Sprintf(" hca_handle=%d", *r.HcaHandles)
	}
	if r.HcaObjects != nil {
		v += fmt.Sprintf(" hca_object=%d", *r.HcaObjects)
	}
	return v
}

// freezeTimeout bounds the wait for FREEZING to turn FROZEN (a task in an uninterruptible sleep
// delays it).
const freezeTimeout = 5 * time.Second

func (m *v1Manager) Freeze() error {
	dir, err := m.dir("freezer")
	if err != nil {
		return err
	}
	if err := writeLeaf(dir, "freezer.state", "FROZEN"); err != nil {
		return err
	}
	polls := 0
	err = waitFor(freezeTimeout, func() (bool, error) {
		s, err := readFile(dir, "freezer.state")
		if err != nil || s == "FROZEN" {
			return err == nil, err
		}
		// A task frozen in the middle of execve (de_thread waiting for sibling threads the
		// freezer already stopped) keeps the cgroup FREEZING for good: thaw briefly and freeze
		// again, as runc does. Seen when pausing right after start under load.
		if polls++; polls%20 == 0 {
			if err := writeLeaf(dir, "freezer.state", "THAWED"); err != nil {
				return false, err
			}
			time.Sleep(time.Millisecond)
		}
		// Re-request: tasks forked while freezing can leave the state at FREEZING.
		return false, writeLeaf(dir, "freezer.state", "FROZEN")
	})
	if err != nil {
		// Do not leave a half-frozen container behind.
		return errors.Join(fmt.Errorf("freeze %s: %w", dir, err), m.Thaw())
	}
	return nil
}

func (m *v1Manager) Thaw() error {
	dir, err := m.dir("freezer")
	if err != nil {
		return err
	}
	if err := writeLeaf(dir, "freezer.state", "THAWED"); err != nil {
		return err
	}
	return waitFor(freezeTimeout, func() (bool, error) {
		s, err := readFile(dir, "freezer.state")
		return err == nil && s == "THAWED", err
	})
}

func (m *v1Manager) Pids() ([]int, error) {
	dir, err := m.dir("pids")
	if err != nil {
		return nil, err
	}
	return readPids(dir)
}

// v1Unlimited is where v1 reports "no limit" (PAGE_COUNTER_MAX pages, rounded); anything this
// large is reported as 0.
const v1Unlimited = 1 << 62

func (m *v1Manager) Stats() (*Stats, error) {
	var s Stats
	mem, err := m.dir("memory")
	if err != nil {
		return nil, err
	}
	pids, err := m.dir("pids")
	if err != nil {
		return nil, err
	}
	cpu, err := m.dir("cpuacct")
	if err != nil {
		return nil, err
	}
	for _, r := range []struct {
		dst       *uint64
		dir, file string
	}{
		{&s.MemoryUsage, mem, "memory.usage_in_bytes"},
		{&s.MemoryLimit, mem, "memory.limit_in_bytes"},
		{&s.PidsCurrent, pids, "pids.current"},
		{&s.PidsLimit, pids, "pids.max"},
		{&s.CPUUsageNS, cpu, "cpuacct.usage"},
	} {
		if *r.dst, err = readUint(r.dir, r.file); err != nil {
			return nil, err
		}
	}
	if s.MemoryLimit >= v1Unlimited {
		s.MemoryLimit = 0
	}
	if s.MemoryPeak, s.OOMKills, err = m.ExitCounters(); err != nil {
		return nil, err
	}
	return &s, nil
}

func (m *v1Manager) ExitCounters() (peak, oomKills uint64, err error) {
	dir, err := m.dir("memory")
	if err != nil {
		return 0, 0, err
	}
	if peak, err = readUint(dir, "memory.max_usage_in_bytes"); err != nil {
		return 0, 0, err
	}
	oomKills, err = readKey(dir, "memory.oom_control", "oom_kill")
	return peak, oomKills, err
}

// JoinV1 writes "0" to each v1 leaf's tasks file (see Manager.JoinV1), through the files
// opened in the background after Create where they are open by now. Plain system calls: os.File
// would offer each file to the runtime's poller first (five more calls, each refused for a
// cgroupfs file). A file opened here is opened so that it does not stay in the host's caches for
// the container's life (openLeaf).
func (m *v1Manager) JoinV1() error {
	defer m.tasks.finish()
	dirs := m.v1Dirs()
	for i := len(dirs) - 1; i >= 0; i-- { // from the end: the background opens from the start
		d := dirs[i]
		fd, ok := m.tasks.take(d)
		if !ok {
			var err error
			if fd, err = openLeaf(d, "tasks", unix.O_WRONLY); err != nil {
				return fmt.Errorf("join cgroup %s: %w", d, err)
			}
		}
		err := writeAll(fd, "0")
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("join cgroup %s: %w", d, &os.PathError{Op: "write", Path: filepath.Join(d, "tasks"), Err: err})
		}
	}
	return nil
}

// Destroy removes the leaf in every hierarchy; the shared parent ("bulwark") stays for others.
// The leaves go one after another, as they were made (see mkdirs), each tried once first: an
// empty cgroup, the common case, needs nothing else.
func (m *v1Manager) Destroy() error {
	m.tasks.finish() // a create undone before its join
	var left []string
	for _, d := range m.allDirs() {
		if err := unix.Rmdir(d); err != nil && err != unix.ENOENT {
			left = append(left, d)
		}
	}
	if len(left) == 0 {
		return nil
	}
	// A frozen v1 cgroup keeps even SIGKILLed tasks until thawed, and so cannot be removed. Its
	// state is read only then: the file's lookup costs a delete that needs no thaw (issue 14).
	if d, ok := m.paths["freezer"]; ok {
		if s, err := readFile(d, "freezer.state"); err == nil && s != "THAWED" {
			if err := m.Thaw(); err != nil {
				return err
			}
		}
	}
	var errs []error
	for _, d := range left {
		errs = append(errs, removeDir(d))
	}
	return errors.Join(errs...)
}
