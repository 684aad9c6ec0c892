package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// fakeV2 is a directory tree shaped like a cgroup2 mount. Its mkdir populates interface files as
// the kernel would, and every write is recorded in order so tests can state exactly what the v2
// manager writes.
type fakeV2 struct {
	root   string
	writes []string // "relative/path=value"
	rules  []devRule
}

var fakeInterfaceFiles = []string{
	"cgroup.controllers", "cgroup.subtree_control", "cgroup.procs", "cgroup.freeze", "cgroup.events",
	"memory.max", "memory.swap.max", "memory.low", "memory.high", "memory.current", "memory.peak",
	"memory.events", "pids.max", "pids.current", "cpu.weight", "cpu.max", "cpu.max.burst", "cpu.idle",
	"cpu.stat", "cpuset.cpus", "cpuset.mems", "io.weight", "io.max", "hugetlb.2MB.max", "rdma.max",
}

func newFakeV2(t *testing.T, controllers string) (*fakeV2, *v2Manager) {
	t.Helper()
	f := &fakeV2{root: t.TempDir()}
	if err := os.WriteFile(filepath.Join(f.root, "cgroup.controllers"), []byte(controllers+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.root, "cgroup.subtree_control"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	m := newV2(f.root, "bulwark/c1")
	m.mkdir = func(dir string) error {
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		for _, name := range fakeInterfaceFiles {
			content := ""
			switch name {
			case "cgroup.controllers":
				content = controllers
			case "cgroup.events":
				content = "populated 0\nfrozen 0\n"
			}
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				return err
			}
		}
		return nil
	}
	m.write = func(dir, name, value string) error {
		rel, _ := filepath.Rel(f.root, filepath.Join(dir, name))
		f.writes = append(f.writes, rel+"="+value)
		if err := writeFile(dir, name, value); err != nil {
			return err
		}
		if name == "cgroup.freeze" { // the kernel reports the new state in cgroup.events
			return os.WriteFile(filepath.Join(dir, "cgroup.events"), []byte("populated 1\nfrozen "+value+"\n"), 0o644)
		}
		return nil
	}
	m.attachDevices = func(dir string, rules []devRule) error {
		f.rules = rules
		return nil
	}
	m.rmdir = os.RemoveAll
	return f, m
}

const allV2 = "cpuset cpu io memory hugetlb pids rdma misc"

func TestV2ExactWrites(t *testing.T) {
	f, m := newFakeV2(t, allV2)
	res, _ := WithDefaults(&specs.LinuxResources{
		CPU:  &specs.LinuxCPU{Shares: ptr[uint64](1024), Quota: ptr[int64](50000), Period: ptr[uint64](100000), Cpus: "0-1", Mems: "0"},
		Pids: &specs.LinuxPids{Limit: ptr[int64](100)},
		BlockIO: &specs.LinuxBlockIO{
			Weight:                  ptr[uint16](500),
			ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8}, Rate: 1 << 20}},
			ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8}, Rate: 100}},
		},
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1 << 30}},
		Unified:        map[string]string{"memory.high": "400M"},
	})
	if err := create(m, res); err != nil {
		t.Fatal(err)
	}
	enable := "+cpu +cpuset +hugetlb +io +memory +pids"
	want := []string{
		"cgroup.subtree_control=" + enable,
		"bulwark/cgroup.subtree_control=" + enable,
		"bulwark/c1/memory.max=536870912",
		"bulwark/c1/memory.swap.max=0",
		"bulwark/c1/pids.max=100",
		"bulwark/c1/cpu.weight=39",
		"bulwark/c1/cpu.max=50000 100000",
		"bulwark/c1/cpuset.cpus=0-1",
		"bulwark/c1/cpuset.mems=0",
		"bulwark/c1/io.weight=4950",
		"bulwark/c1/io.max=8:0 rbps=1048576",
		"bulwark/c1/io.max=8:0 wiops=100",
		"bulwark/c1/hugetlb.2MB.max=1073741824",
		"bulwark/c1/memory.high=400M",
	}
	if !slices.Equal(f.writes, want) {
		t.Errorf("writes:\n%s\nwant:\n%s", strings.Join(f.writes, "\n"), strings.Join(want, "\n"))
	}
	if !slices.Equal(f.rules, floorDevices) {
		t.Errorf("device rules = %v, want the floor set %v", f.rules, floorDevices)
	}

	f.writes = nil
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	want = []string{"bulwark/c1/cgroup.freeze=1", "bulwark/c1/cgroup.freeze=0"}
	if !slices.Equal(f.writes, want) {
		t.Errorf("writes = %q, want %q", f.writes, want)
	}
	if p := m.Paths(); p[""] != filepath.Join(f.root, "bulwark/c1") || len(p) != 1 {
		t.Errorf("Paths() = %v", p)
	}
}

// TestV2CreateRefusesExistingLeaf: a leaf that exists is another cgroup's; Create refuses it with
// ErrExist and leaves it as it was (the old Create adopted it).
func TestV2CreateRefusesExistingLeaf(t *testing.T) {
	f, m := newFakeV2(t, allV2)
	for _, d := range []string{filepath.Dir(m.dir), m.dir} {
		if err := m.mkdir(d); err != nil {
			t.Fatal(err)
		}
	}
	res, _ := WithDefaults(nil)
	if err := create(m, res); !errors.Is(err, ErrExist) {
		t.Fatalf("Create over an existing leaf: %v, want ErrExist", err)
	}
	if _, err := os.Stat(m.dir); err != nil {
		t.Errorf("the existing leaf after the refusal: %v", err)
	}
	for _, w := range f.writes {
		if strings.HasPrefix(w, "bulwark/c1/") {
			t.Errorf("refused Create wrote %s", w)
		}
	}
}

func TestV2Stats(t *testing.T) {
	_, m := newFakeV2(t, allV2)
	if err := create(m, nil); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"memory.current": "1000\n", "memory.peak": "5000\n", "memory.max": "max\n",
		"memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\noom_group_kill 0\n",
		"pids.current":  "7\n", "pids.max": "1024\n", "cpu.stat": "usage_usec 1500\nuser_usec 1000\n",
		"cgroup.procs": "12\n34\n",
	} {
		if err := os.WriteFile(filepath.Join(m.dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{MemoryUsage: 1000, MemoryPeak: 5000, OOMKills: 2, PidsCurrent: 7, PidsLimit: 1024, CPUUsageNS: 1500000}
	if *st != want {
		t.Errorf("Stats() = %+v, want %+v", *st, want)
	}
	if peak, oom, err := m.ExitCounters(); err != nil || peak != 5000 || oom != 2 {
		t.Errorf("ExitCounters() = %d, %d, %v; want 5000, 2", peak, oom, err)
	}
	if pids, err := m.Pids(); err != nil || !slices.Equal(pids, []int{12, 34}) {
		t.Errorf("Pids() = %v, %v", pids, err)
	}
}

func TestV2Refusals(t *testing.T) {
	for _, tc := range []struct {
		name        string
		controllers string
		res         specs.LinuxResources
		unsupported bool
	}{
		{"unified pids.max would undo the floor", allV2, specs.LinuxResources{Unified: map[string]string{"pids.max": "max"}}, false},
		{"unified cgroup.procs", allV2, specs.LinuxResources{Unified: map[string]string{"cgroup.procs": "1"}}, false},
		{"unified path escape", allV2, specs.LinuxResources{Unified: map[string]string{"../memory.max": "1"}}, false},
		{"disableOOMKiller", allV2, specs.LinuxResources{Memory: &specs.LinuxMemory{DisableOOMKiller: ptr(true)}}, true},
		{"realtime cpu", allV2, specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: ptr[int64](10)}}, true},
		{"net_cls", allV2, specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: ptr[uint32](1)}}, true},
		{"missing io controller", "cpuset cpu memory pids", specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: ptr[uint16](100)}}, true},
		{"swap below memory", allV2, specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](100 << 20), Swap: ptr[int64](50 << 20)}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, m := newFakeV2(t, tc.controllers)
			err := create(m, &tc.res)
			if err == nil {
				t.Fatal("Create succeeded")
			}
			if got := errors.Is(err, ErrUnsupported); got != tc.unsupported {
				t.Errorf("errors.Is(%v, ErrUnsupported) = %v, want %v", err, got, tc.unsupported)
			}
			if _, err := os.Stat(m.dir); !os.IsNotExist(err) {
				t.Errorf("cgroup %s left behind after a refused Create (writes %q)", m.dir, f.writes)
			}
		})
	}
}

func TestConversions(t *testing.T) {
	for shares, weight := range map[uint64]uint64{2: 1, 1024: 39, 262144: 10000, 1: 1, 1 << 20: 10000} {
		if got := sharesToWeight(shares); got != weight {
			t.Errorf("sharesToWeight(%d) = %d, want %d", shares, got, weight)
		}
	}
	for w, io := range map[uint16]uint64{10: 1, 500: 4950, 1000: 10000} {
		if got := blkioToIOWeight(w); got != io {
			t.Errorf("blkioToIOWeight(%d) = %d, want %d", w, got, io)
		}
	}
}

// realV2 returns a v2 manager for bulwark-test-<random> in the host's real unified hierarchy
// (whatever controllers it has) and removes it at the end.
func realV2(t *testing.T) *v2Manager {
	t.Helper()
	requireRoot(t)
	mounts, err := cgroupMounts()
	if err != nil {
		t.Fatal(err)
	}
	root := ""
	for _, mi := range mounts {
		if mi.FSType == "cgroup2" {
			root = mi.Mountpoint
		}
	}
	if root == "" {
		t.Skip("no cgroup2 hierarchy mounted")
	}
	parent := randomName(t)
	m := newV2(root, parent+"/c")
	t.Cleanup(func() {
		if err := m.Destroy(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if err := removeDir(filepath.Join(root, parent)); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return m
}

// TestV2DevicesAndFreezeReal runs on the real cgroup2 hierarchy even when it has no controllers
// (as on this hybrid host): the eBPF device program and cgroup.freeze are core cgroup2 features.
// Resources are empty so no controller is enabled in the host's root subtree_control.
func TestV2DevicesAndFreezeReal(t *testing.T) {
	m := realV2(t)
	if err := create(m, &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: false, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](9), Access: "w"},
	}}); err != nil {
		t.Fatal(err)
	}
	h := startHelper(t, "open", "/dev/null", "/dev/zero", "/dev/urandom", "/dev/kmsg", "/dev/loop0")
	addProc(t, m, h.cmd.Process.Pid)
	if pids, err := m.Pids(); err != nil || !slices.Equal(pids, []int{h.cmd.Process.Pid}) {
		t.Fatalf("Pids() = %v, %v", pids, err)
	}
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if n, err := readKey(m.dir, "cgroup.events", "frozen"); err != nil || n != 1 {
		t.Fatalf("cgroup.events frozen = %d, %v", n, err)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	out, err := h.run()
	if err != nil {
		t.Fatalf("helper: %v (%s)", err, out)
	}
	eperm := strconv.Itoa(int(syscall.EPERM))
	// /dev/urandom: the spec's deny removed "w", and the helper opens O_RDWR.
	want := fmt.Sprintf("/dev/null ok\n/dev/zero ok\n/dev/urandom %s\n/dev/kmsg %s\n/dev/loop0 %s\n", eperm, eperm, eperm)
	if out != want {
		t.Errorf("open results under the eBPF device program:\n%s\nwant:\n%s", out, want)
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(m.dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists after Destroy", m.dir)
	}
}

// TestV2Integration runs the whole v2 path (limits, OOM kill, freeze, Destroy) where the unified
// hierarchy has the controllers New would use it for.
func TestV2Integration(t *testing.T) {
	requireRoot(t)
	h, err := detect()
	if err != nil {
		t.Fatal(err)
	}
	if h.v2 == "" {
		ctrls, _ := os.ReadFile("/sys/fs/cgroup/unified/cgroup.controllers")
		t.Skipf("the unified hierarchy lacks the controllers %v (it offers %q; v1 holds them here), so New uses v1; "+
			"TestV2ExactWrites and TestV2DevicesAndFreezeReal cover v2 on this host", v2Needed, strings.TrimSpace(string(ctrls)))
	}
	parent := randomName(t)
	m := newV2(h.v2, parent+"/c")
	t.Cleanup(func() {
		if err := m.Destroy(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if err := removeDir(filepath.Join(h.v2, parent)); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	res, _ := WithDefaults(&specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptr[int64](48 << 20)},
		Pids:   &specs.LinuxPids{Limit: ptr[int64](64)},
	})
	if err := create(m, res); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{"memory.max": "50331648", "pids.max": "64"} {
		if got, err := readFile(m.dir, file); err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", file, got, err, want)
		}
	}
	helper := startHelper(t, "alloc")
	addProc(t, m, helper.cmd.Process.Pid)
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	out, err := helper.run()
	ws, _ := helper.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if err == nil || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("allocating child: err=%v out=%q; want SIGKILL by the OOM killer", err, out)
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.OOMKills < 1 || st.MemoryLimit != 48<<20 || st.PidsLimit != 64 {
		t.Errorf("Stats() = %+v", st)
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
}

// TestSharesZeroIsUnset: both hierarchies read shares 0 (Docker's "not set") as no value.
func TestSharesZeroIsUnset(t *testing.T) {
	for _, c := range []*specs.LinuxCPU{nil, {}, {Shares: ptr[uint64](0)}} {
		if v, ok := cpuShares(c); ok {
			t.Errorf("cpuShares(%+v) = %d, want unset", c, v)
		}
	}
	if v, ok := cpuShares(&specs.LinuxCPU{Shares: ptr[uint64](512)}); !ok || v != 512 {
		t.Errorf("cpuShares(512) = %d, %v", v, ok)
	}
	f, m := newFakeV2(t, allV2)
	if err := create(m, &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: ptr[uint64](0)}}); err != nil {
		t.Fatal(err)
	}
	for _, w := range f.writes {
		if strings.Contains(w, "cpu.weight") {
			t.Errorf("shares 0 wrote %s", w)
		}
	}
}
