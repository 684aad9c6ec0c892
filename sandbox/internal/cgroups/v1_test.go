package cgroups

import (
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// newTestV1 returns a manager for bulwark-test-<random>/c below every real v1 hierarchy and makes
// sure the test leaves no cgroup behind, even when it fails half-way.
func newTestV1(t *testing.T) *v1Manager {
	t.Helper()
	requireRoot(t)
	h, err := detect()
	if err != nil {
		t.Fatal(err)
	}
	if h.v1 == nil {
		t.Skip("host uses cgroup v2; the v1 path cannot be exercised")
	}
	parent := randomName(t)
	m := newV1(h.v1, parent+"/c")
	t.Cleanup(func() {
		if err := m.Destroy(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		for _, mnt := range h.v1 {
			if err := removeDir(filepath.Join(mnt, parent)); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	return m
}

func readT(t *testing.T, dir, name string) string {
	t.Helper()
	s, err := readFile(dir, name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// wholeDisk returns "major:minor" of a real disk for blkio throttles, or "" if none.
func wholeDisk() (int64, int64, bool) {
	devs, _ := filepath.Glob("/sys/block/*/dev")
	for _, d := range devs {
		if strings.Contains(d, "/loop") || strings.Contains(d, "/zram") {
			continue
		}
		b, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		maj, min, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
		ma, err1 := strconv.ParseInt(maj, 10, 64)
		mi, err2 := strconv.ParseInt(min, 10, 64)
		if ok && err1 == nil && err2 == nil {
			return ma, mi, true
		}
	}
	return 0, 0, false
}

func TestV1Lifecycle(t *testing.T) {
	m := newTestV1(t)
	spec := &specs.LinuxResources{
		CPU:  &specs.LinuxCPU{Shares: ptr[uint64](512), Quota: ptr[int64](50000), Period: ptr[uint64](100000), Cpus: "0", Mems: "0"},
		Pids: &specs.LinuxPids{Limit: ptr[int64](64)},
	}
	maj, min, haveDisk := wholeDisk()
	if haveDisk {
		spec.BlockIO = &specs.LinuxBlockIO{ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{Rate: 1 << 20}}}
		spec.BlockIO.ThrottleReadBpsDevice[0].Major, spec.BlockIO.ThrottleReadBpsDevice[0].Minor = maj, min
	}
	res, _ := WithDefaults(spec)
	if err := create(m, res); err != nil {
		t.Fatal(err)
	}
	p := m.Paths()
	for _, c := range []struct{ ctrl, file, want string }{
		{"memory", "memory.limit_in_bytes", itoa(DefaultMemoryLimit)},
		{"memory", "memory.memsw.limit_in_bytes", itoa(DefaultMemoryLimit)},
		{"pids", "pids.max", "64"},
		{"cpu", "cpu.shares", "512"},
		{"cpu", "cpu.cfs_quota_us", "50000"},
		{"cpu", "cpu.cfs_period_us", "100000"},
		{"cpuset", "cpuset.cpus", "0"},
		{"cpuset", "cpuset.mems", "0"},
		{"memory", "notify_on_release", "0"},
		{"freezer", "notify_on_release", "0"},
		{"devices", "devices.list", strings.Join([]string{
			"c 1:3 rw", "c 1:5 rw", "c 1:7 rw", "c 1:8 rw", "c 1:9 rw", "c 5:0 rw", "c 5:2 rw", "c 136:* rw"}, "\n")},
	} {
		if got := readT(t, p[c.ctrl], c.file); got != c.want {
			t.Errorf("%s/%s = %q, want %q", c.ctrl, c.file, got, c.want)
		}
	}
	if haveDisk {
		want := strconv.FormatInt(maj, 10) + ":" + strconv.FormatInt(min, 10) + " 1048576"
		if got := readT(t, p["blkio"], "blkio.throttle.read_bps_device"); got != want {
			t.Errorf("read_bps_device = %q, want %q", got, want)
		}
	}

	sleep := exec.Command("sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleep.Process.Kill(); sleep.Wait() })
	pid := sleep.Process.Pid
	addProc(t, m, pid)
	if pids, err := m.Pids(); err != nil || !slices.Equal(pids, []int{pid}) {
		t.Fatalf("Pids() = %v, %v; want [%d]", pids, err, pid)
	}
	for ctrl, dir := range p {
		procs := readT(t, dir, "cgroup.procs")
		if procs != strconv.Itoa(pid) {
			t.Errorf("%s cgroup.procs = %q, want %d", ctrl, procs, pid)
		}
	}

	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if s := readT(t, p["freezer"], "freezer.state"); s != "FROZEN" {
		t.Fatalf("freezer.state = %q after Freeze", s)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if s := readT(t, p["freezer"], "freezer.state"); s != "THAWED" {
		t.Fatalf("freezer.state = %q after Thaw", s)
	}

	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.PidsCurrent != 1 || st.PidsLimit != 64 || st.MemoryLimit != uint64(DefaultMemoryLimit) || st.OOMKills != 0 {
		t.Errorf("Stats() = %+v", st)
	}
	if peak, oom, err := m.ExitCounters(); err != nil || peak != st.MemoryPeak || oom != 0 {
		t.Errorf("ExitCounters() = %d, %d, %v; want %d, 0", peak, oom, err, st.MemoryPeak)
	}

	sleep.Process.Kill()
	sleep.Wait()
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	for ctrl, dir := range p {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s cgroup %s still exists after Destroy", ctrl, dir)
		}
	}
	if err := m.Destroy(); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
}

// TestV1DevicesEnforced checks the allowlist with a real open(2) from inside the cgroup.
func TestV1DevicesEnforced(t *testing.T) {
	m := newTestV1(t)
	res, _ := WithDefaults(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: true, Access: "rwm"}, // asks for everything; the floor ignores it
		{Allow: false, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](9), Access: "rwm"},
	}})
	if err := create(m, res); err != nil {
		t.Fatal(err)
	}
	h := startHelper(t, "open", "/dev/null", "/dev/zero", "/dev/urandom", "/dev/kmsg", "/dev/loop0")
	addProc(t, m, h.cmd.Process.Pid)
	out, err := h.run()
	if err != nil {
		t.Fatalf("helper: %v (%s)", err, out)
	}
	eperm := strconv.Itoa(int(syscall.EPERM))
	want := "/dev/null ok\n/dev/zero ok\n/dev/urandom " + eperm + "\n/dev/kmsg " + eperm + "\n/dev/loop0 " + eperm + "\n"
	if out != want {
		t.Errorf("open results:\n%s\nwant:\n%s", out, want)
	}
}

// TestV1MemoryLimitEnforced runs a child that allocates far past its limit and expects the
// kernel OOM killer to stop it inside its own cgroup.
func TestV1MemoryLimitEnforced(t *testing.T) {
	m := newTestV1(t)
	res, _ := WithDefaults(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](48 << 20)}})
	if err := create(m, res); err != nil {
		t.Fatal(err)
	}
	h := startHelper(t, "alloc")
	addProc(t, m, h.cmd.Process.Pid)
	out, err := h.run()
	ws, _ := h.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if err == nil || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("allocating child: err=%v status=%v out=%q; want SIGKILL by the OOM killer", err, ws, out)
	}
	if peak, oom, err := m.ExitCounters(); err != nil || oom == 0 || peak == 0 {
		t.Errorf("ExitCounters() = %d, %d, %v; want a peak and an OOM kill", peak, oom, err)
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	// The charge can overshoot the limit by a page or so before reclaim and the OOM killer act.
	if st.OOMKills < 1 || st.MemoryPeak < 32<<20 || st.MemoryPeak > 49<<20 || st.MemoryLimit != 48<<20 {
		t.Errorf("Stats() = %+v; want oomKills >= 1, peak near the limit %d", st, 48<<20)
	}
}

// TestV1CpusetBesideSibling: a leaf made under an existing parent (the common path: bulwark/<id>
// beside other containers) gets its cpuset.cpus and cpuset.mems from the parent, and takes tasks.
func TestV1CpusetBesideSibling(t *testing.T) {
	m := newTestV1(t)
	res, _ := WithDefaults(nil)
	if err := create(m, res); err != nil {
		t.Fatal(err)
	}
	sib := newV1(m.mounts, filepath.Dir(m.name)+"/d")
	t.Cleanup(func() {
		if err := sib.Destroy(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if err := create(sib, res); err != nil {
		t.Fatal(err)
	}
	mnt := m.mounts["cpuset"]
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		if got, want := readT(t, sib.paths["cpuset"], f), readT(t, mnt, f); got != want || got == "" {
			t.Errorf("%s = %q, want the root's %q", f, got, want)
		}
	}
	sleep := exec.Command("sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleep.Process.Kill(); sleep.Wait() })
	addProc(t, sib, sleep.Process.Pid)
	sleep.Process.Kill()
	sleep.Wait()
}

// TestV1JoinBeforeLimits: once Create returns, a process may join every hierarchy (the cpuset
// leaf has cpus and mems, notify_on_release is clear, the device allowlist is in force: the
// runtime's joining thread opens /dev/null) while the other limits are still being written; a
// limit that fails is reported by the wait, and the caller's Destroy leaves nothing behind.
func TestV1JoinBeforeLimits(t *testing.T) {
	m := newTestV1(t)
	res, _ := WithDefaults(&specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "4095"}})
	limits, err := m.Create(res)
	if err != nil {
		t.Fatal(err)
	}
	if got := readT(t, m.paths["devices"], "devices.list"); !strings.HasPrefix(got, "c 1:3 rw\n") {
		t.Errorf("devices.list as Create returned: %q", got)
	}
	for _, d := range m.v1Dirs() {
		if got := readT(t, d, "notify_on_release"); got != "0" {
			t.Errorf("%s notify_on_release = %q", d, got)
		}
	}
	h := startHelper(t, "open", "/dev/null", "/dev/kmsg")
	addProc(t, m, h.cmd.Process.Pid)
	out, err := h.run()
	if want := "/dev/null ok\n/dev/kmsg " + strconv.Itoa(int(syscall.EPERM)) + "\n"; err != nil || out != want {
		t.Errorf("opens in the cgroup as Create returned: %q, %v; want %q", out, err, want)
	}
	if err := limits(); err == nil {
		t.Error("cpuset.cpus=4095 was written")
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	for ctrl, dir := range m.Paths() {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s cgroup %s left behind", ctrl, dir)
		}
	}
}

// TestV1JoinV1 moves a thread into every v1 leaf: through the tasks files opened in the
// background after Create, which the join takes, leaving none open; through files it opens
// itself, for a manager that did not create the cgroup; and when the join came first, the
// background opens nothing after it.
func TestV1JoinV1(t *testing.T) {
	m := newTestV1(t)
	res, _ := WithDefaults(nil)
	if err := create(m, res); err != nil { // limits done: the tasks files are open
		t.Fatal(err)
	}
	if len(m.tasks.fds) != len(m.v1Dirs()) {
		t.Fatalf("%d tasks files opened after Create, want %d", len(m.tasks.fds), len(m.v1Dirs()))
	}
	early := newV1(m.mounts, m.name)
	for _, mgr := range []*v1Manager{m, newV1(m.mounts, m.name), early} {
		got := make(chan string, 1)
		onOwnThread(func() {
			if err := mgr.JoinV1(); err != nil {
				got <- err.Error()
				return
			}
			b, _ := os.ReadFile("/proc/thread-self/cgroup")
			got <- string(b)
		})
		cg := <-got
		joined := 0
		for _, line := range strings.Split(strings.TrimSpace(cg), "\n") {
			f := strings.SplitN(line, ":", 3)
			if len(f) != 3 || m.mounts[strings.Split(f[1], ",")[0]] == "" {
				continue // a hierarchy the test's manager is not in
			}
			joined++
			if f[2] != "/"+m.name {
				t.Errorf("joined thread's cgroup %q, want /%s in every v1 hierarchy", line, m.name)
			}
		}
		if joined != len(m.v1Dirs()) {
			t.Errorf("joined %d hierarchies, want %d: %q", joined, len(m.v1Dirs()), cg)
		}
		if len(mgr.tasks.fds) != 0 {
			t.Errorf("tasks files left open after the join: %v", mgr.tasks.fds)
		}
	}
	early.tasks.open(early.v1Dirs())
	if len(early.tasks.fds) != 0 {
		t.Errorf("tasks files opened after the join: %v", early.tasks.fds)
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
}

// TestTasksFilesMeetInTheMiddle: the background opens from the first leaf, the join takes from
// the last; the files the join claimed first are not opened in the background.
func TestTasksFilesMeetInTheMiddle(t *testing.T) {
	dir := t.TempDir()
	var dirs []string
	for _, n := range []string{"a", "b", "c", "d"} {
		d := filepath.Join(dir, n)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "tasks"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	var tf tasksFiles
	for _, d := range dirs[2:] {
		if _, ok := tf.take(d); ok {
			t.Fatalf("%s handed over before anything was opened", d)
		}
	}
	tf.open(dirs)
	if len(tf.fds) != 2 || tf.fds[dirs[0]] == 0 || tf.fds[dirs[1]] == 0 {
		t.Errorf("opened %v, want the two leaves the join had not claimed", tf.fds)
	}
	if fd, ok := tf.take(dirs[1]); !ok {
		t.Errorf("%s not handed over", dirs[1])
	} else {
		unix.Close(fd)
	}
	tf.finish()
	if len(tf.fds) != 0 {
		t.Errorf("finish left %v open", tf.fds)
	}
}

// onOwnThread runs fn on a goroutine locked to an OS thread that ends with it (never the main
// thread, which the Go runtime keeps: it is held meanwhile).
func onOwnThread(fn func()) {
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked
		if unix.Gettid() == unix.Getpid() {
			onOwnThread(fn)
			runtime.UnlockOSThread()
		} else {
			fn()
		}
		close(done)
	}()
	<-done
}

// TestV1CreateRollback asks for an impossible cpuset and expects an error and no directories.
func TestV1CreateRollback(t *testing.T) {
	m := newTestV1(t)
	res, _ := WithDefaults(&specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "4095"}})
	if err := create(m, res); err == nil {
		t.Fatal("Create with cpuset.cpus=4095 succeeded")
	}
	for ctrl, dir := range m.Paths() {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s cgroup %s left behind after a failed Create", ctrl, dir)
		}
	}
}

// TestV1CreateRefusesExistingLeaf: a leaf that exists in any hierarchy is another cgroup's. Create
// refuses it with ErrExist, never adopting it, leaves it as it was, and removes the leaves it made
// itself (the old Create adopted it).
func TestV1CreateRefusesExistingLeaf(t *testing.T) {
	for _, ctrl := range []string{"pids", "cpuset"} {
		t.Run(ctrl, func(t *testing.T) {
			m := newTestV1(t)
			res, _ := WithDefaults(nil)
			if err := create(m, res); err != nil { // makes the parents
				t.Fatal(err)
			}
			if err := m.Destroy(); err != nil {
				t.Fatal(err)
			}
			theirs := m.paths[ctrl]
			if err := os.Mkdir(theirs, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := create(m, res); !errors.Is(err, ErrExist) {
				t.Fatalf("Create over an existing %s leaf: %v, want ErrExist", ctrl, err)
			}
			if _, err := os.Stat(theirs); err != nil {
				t.Errorf("the existing %s leaf after the refusal: %v", ctrl, err)
			}
			for _, d := range m.allDirs() {
				if _, err := os.Stat(d); d != theirs && !os.IsNotExist(err) {
					t.Errorf("refused Create left %s behind (%v)", d, err)
				}
			}
		})
	}
}

// TestV1DestroyFrozen kills the processes of a paused container and expects Destroy to thaw the
// cgroup so the kill lands and the directories go.
func TestV1DestroyFrozen(t *testing.T) {
	m := newTestV1(t)
	if pids, err := m.Pids(); err != nil || pids != nil {
		t.Fatalf("Pids() before Create = %v, %v; want none", pids, err)
	}
	res, _ := WithDefaults(nil)
	if err := create(m, res); err != nil {
		t.Fatal(err)
	}
	sleep := exec.Command("sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleep.Process.Kill(); sleep.Wait() })
	addProc(t, m, sleep.Process.Pid)
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	sleep.Process.Kill()
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	for ctrl, dir := range m.Paths() {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s cgroup %s still exists", ctrl, dir)
		}
	}
}

// TestV1UnsupportedFailsClosed asks for limits this host's v1 setup cannot enforce and expects
// ErrUnsupported and nothing left behind, never a silently unlimited container.
func TestV1UnsupportedFailsClosed(t *testing.T) {
	m := newTestV1(t)
	cases := map[string]*specs.LinuxResources{
		"unified on v1": {Unified: map[string]string{"memory.high": "1M"}},
	}
	if _, ok := m.paths["hugetlb"]; !ok {
		cases["hugetlb without a hugetlb hierarchy"] = &specs.LinuxResources{
			HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1 << 21}}}
	}
	for name, spec := range cases {
		t.Run(name, func(t *testing.T) {
			res, _ := WithDefaults(spec)
			err := create(m, res)
			if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("Create: %v; want ErrUnsupported", err)
			}
			for ctrl, dir := range m.Paths() {
				if _, err := os.Stat(dir); !os.IsNotExist(err) {
					t.Errorf("%s cgroup %s left behind", ctrl, dir)
				}
			}
		})
	}
}

// TestV1BlkioWeight sets a blkio weight where the kernel offers a weight file (CFQ's blkio.weight
// or BFQ's blkio.bfq.weight, which only non-root cgroups have) and expects ErrUnsupported where
// it offers neither.
func TestV1BlkioWeight(t *testing.T) {
	m := newTestV1(t)
	if err := create(m, nil); err != nil {
		t.Fatal(err)
	}
	dir := m.paths["blkio"]
	file := ""
	for _, f := range []string{"blkio.weight", "blkio.bfq.weight"} {
		if exists(dir, f) {
			file = f
			break
		}
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	err := create(m, &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: ptr[uint16](500)}})
	if file == "" {
		if !errors.Is(err, ErrUnsupported) {
			t.Fatalf("Create with a blkio weight on a kernel without weight files: %v; want ErrUnsupported", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := readT(t, dir, file); got != "500" && got != "default 500" {
		t.Errorf("%s = %q, want 500", file, got)
	}
}

// TestV1SharesZeroIsUnset: Docker sends cpu.shares 0 for "not set"; the cgroup keeps the kernel's
// default (1024) instead of getting the minimum, 2.
func TestV1SharesZeroIsUnset(t *testing.T) {
	m := newTestV1(t)
	if err := create(m, &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: ptr[uint64](0)}}); err != nil {
		t.Fatal(err)
	}
	if got := readT(t, m.paths["cpu"], "cpu.shares"); got != "1024" {
		t.Errorf("cpu.shares = %q after shares 0, want the default 1024", got)
	}
}

// TestV1PlacesInEveryHierarchy (issue 8 §6): on a hybrid host the container gets a leaf in the
// unified and name=systemd hierarchies too, which Destroy removes with the others.
func TestV1PlacesInEveryHierarchy(t *testing.T) {
	requireRoot(t)
	h, err := detect()
	if err != nil {
		t.Fatal(err)
	}
	if h.v1 == nil || (h.unified == "" && len(h.named) == 0) {
		t.Skip("not a hybrid host")
	}
	parent := randomName(t)
	m := newV1(h.v1, parent+"/c")
	m.placeIn(h.named, h.unified)
	t.Cleanup(func() {
		for _, mnt := range append(append(slices.Collect(maps.Values(h.v1)), slices.Collect(maps.Values(h.named))...), h.unified) {
			if mnt != "" {
				removeDir(filepath.Join(mnt, parent))
			}
		}
	})
	if err := create(m, nil); err != nil {
		t.Fatal(err)
	}
	unified, named := 0, 0
	for _, hr := range m.Hierarchies() {
		if _, err := os.Stat(hr.Dir); err != nil {
			t.Errorf("%+v: %v", hr, err)
		}
		switch {
		case hr.Unified:
			unified++
		case strings.HasPrefix(hr.Options, "name="):
			named++
		}
	}
	if (h.unified != "") != (unified == 1) || named != len(h.named) {
		t.Errorf("Hierarchies() = %+v; host has unified %q, named %v", m.Hierarchies(), h.unified, h.named)
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	for _, hr := range m.Hierarchies() {
		if _, err := os.Stat(hr.Dir); err == nil {
			t.Errorf("%s left behind", hr.Dir)
		}
	}
}

// TestV1NotifyOnReleaseCleared: a leaf never keeps notify_on_release set (CVE-2022-0492), whether
// its parent has the flag clear (the leaf inherits it clear and is left alone) or set (the leaf is
// cleared itself), in every v1 hierarchy.
func TestV1NotifyOnReleaseCleared(t *testing.T) {
	for _, parentFlag := range []string{"1", "0"} {
		t.Run("parent "+parentFlag, func(t *testing.T) {
			m := newTestV1(t)
			for _, d := range m.v1Dirs() {
				parent := filepath.Dir(d)
				if err := os.MkdirAll(parent, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := writeFile(parent, "notify_on_release", parentFlag); err != nil {
					t.Fatal(err)
				}
			}
			res, _ := WithDefaults(&specs.LinuxResources{})
			if err := create(m, res); err != nil {
				t.Fatal(err)
			}
			for _, d := range m.v1Dirs() {
				if got := readT(t, d, "notify_on_release"); got != "0" {
					t.Errorf("%s/notify_on_release = %q under a parent with %s", d, got, parentFlag)
				}
			}
		})
	}
}

// TestV1WritesKeepFileAttributes: writing a limit leaves the cgroup file's attributes alone. An
// open with O_TRUNC made the kernel keep an attribute record (kernfs_iattrs) for each file written
// until the cgroup is removed, 0.5 kB per container; the truncation also set the file's ctime.
func TestV1WritesKeepFileAttributes(t *testing.T) {
	m := newTestV1(t)
	res, _ := WithDefaults(&specs.LinuxResources{})
	if err := create(m, res); err != nil {
		t.Fatal(err)
	}
	dir, err := m.dir("pids")
	if err != nil {
		t.Fatal(err)
	}
	var before, after unix.Stat_t
	p := filepath.Join(dir, "pids.max")
	if err := unix.Stat(p, &before); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if err := writeFile(dir, "pids.max", readT(t, dir, "pids.max")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(p, &after); err != nil {
		t.Fatal(err)
	}
	if after.Ctim != before.Ctim {
		t.Errorf("writing %s changed its ctime (%v -> %v): the write set the file's attributes", p, before.Ctim, after.Ctim)
	}
}

// TestV1LeafFilesLeaveNothingCached: the files Create writes in the container's own cgroup
// directories are opened by their kernfs handle, so that no dentry (and inode) of theirs stays in
// the host's caches for the container's life (~0.85 kB each, issue 14). A file looked up by path
// keeps a connected dentry, which an open by handle then finds and names by its path; without
// one, the handle gets a disconnected dentry, named "/".
func TestV1LeafFilesLeaveNothingCached(t *testing.T) {
	m := newTestV1(t)
	res, _ := WithDefaults(&specs.LinuxResources{})
	if err := create(m, res); err != nil {
		t.Fatal(err)
	}
	written := map[string][]string{
		"pids":    {"pids.max"},
		"memory":  {"memory.limit_in_bytes", "memory.memsw.limit_in_bytes"},
		"devices": {"devices.deny", "devices.allow", "devices.list"},
		"cpuset":  {"cpuset.cpus", "cpuset.mems"},
	}
	for ctrl, files := range written {
		dir, err := m.dir(ctrl)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			fd, err := openLeaf(dir, f, unix.O_RDONLY)
			if errors.Is(err, os.ErrNotExist) {
				continue // memsw without swap accounting
			}
			if err != nil {
				t.Fatal(err)
			}
			name, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
			unix.Close(fd)
			if err != nil {
				t.Fatal(err)
			}
			if name != "/" {
				t.Errorf("%s/%s has a cached dentry (%s) after Create: it was opened by path", dir, f, name)
			}
		}
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
}
