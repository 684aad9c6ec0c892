package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/procstat"
	"bulwark.dev/bulwark/sandbox/internal/cgroups"
	"bulwark.dev/bulwark/sandbox/internal/idmap"
)

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates namespaces, cgroups and mounts")
	}
}

// busyboxBundle builds a bundle whose rootfs holds a static busybox and its applet links.
func busyboxBundle(t testing.TB) (string, *specs.Spec) {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox-static not installed")
	}
	bundle := t.TempDir()
	rootfs := filepath.Join(bundle, "rootfs")
	for _, d := range []string{"bin", "etc", "proc", "sys", "dev", "tmp"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"sh", "true", "false", "cat", "echo", "ls", "id", "sleep", "grep", "mount", "hostname", "touch", "ps"} {
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	spec := &specs.Spec{
		Version:  specs.Version,
		Root:     &specs.Root{Path: "rootfs"},
		Hostname: "bulwark-test",
		Process: &specs.Process{
			Args: []string{"/bin/true"},
			Env:  []string{"PATH=/bin"},
			Cwd:  "/",
		},
		Linux: &specs.Linux{Namespaces: privateNamespaces()},
	}
	return bundle, spec
}

func newTestRuntime(t *testing.T) *Runtime {
	t.Helper()
	r, err := New(Options{Root: t.TempDir(), Tenant: "t-" + strings.ToLower(t.Name())})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// startSleeper creates and starts container id running `sleep 100`; it is force-deleted
// when the test ends (before leakCheck looks).
func startSleeper(t *testing.T, r *Runtime, id, bundle string, spec *specs.Spec) *Container {
	t.Helper()
	spec.Process.Args = []string{"/bin/sleep", "100"}
	c, err := r.Create(id, bundle, spec, IO{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Delete(true) })
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	// Start returns once init is told to exec, as runc's does; wait for the exec itself so that
	// what the test then sees inside is the workload.
	st, err := c.State()
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", st.Pid))
		if strings.HasPrefix(string(cmdline), "/bin/sleep\x00") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("init %d did not exec the workload: cmdline %q", st.Pid, cmdline)
		}
	}
	return c
}

// leakCheck snapshots mounts and cgroup dirs and verifies after the test that nothing is left.
func leakCheck(t *testing.T, id string) {
	t.Helper()
	before, _ := os.ReadFile("/proc/self/mountinfo")
	t.Cleanup(func() {
		after, _ := os.ReadFile("/proc/self/mountinfo")
		if len(after) != len(before) {
			t.Errorf("mount table changed: %d → %d bytes", len(before), len(after))
		}
		m, _ := filepath.Glob("/sys/fs/cgroup/*/bulwark/" + id)
		if len(m) > 0 {
			t.Errorf("cgroup dirs left behind: %v", m)
		}
		threads, _ := filepath.Glob("/proc/self/task/*/cgroup")
		for _, p := range threads {
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte("/bulwark/"+id+"\n")) {
				t.Errorf("a runtime thread is in the container's cgroup: %s", p)
			}
		}
		procs, _ := filepath.Glob("/proc/[0-9]*/cgroup")
		for _, p := range procs {
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte("/bulwark/"+id+"\n")) {
				t.Errorf("process left behind: %s", p)
			}
		}
	})
}

func run(t *testing.T, r *Runtime, id, bundle string, spec *specs.Spec) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	outR, outW, _ := os.Pipe()
	errR, errW, _ := os.Pipe()
	done := make(chan struct{})
	go func() { stdout.ReadFrom(outR); close(done) }()
	done2 := make(chan struct{})
	go func() { stderr.ReadFrom(errR); close(done2) }()
	c, err := r.Create(id, bundle, spec, IO{Stdout: outW, Stderr: errW})
	outW.Close()
	errW.Close()
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	defer func() {
		if err := c.Delete(true); err != nil {
			t.Errorf("delete: %v", err)
		}
	}()
	if err := c.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	code, err := c.Wait()
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	<-done
	<-done2
	return code, stdout.String(), stderr.String()
}

func TestRunTrue(t *testing.T) {
	needRoot(t)
	leakCheck(t, "true1")
	r := newTestRuntime(t)
	bundle, spec := busyboxBundle(t)
	start := time.Now()
	code, out, errOut := run(t, r, "true1", bundle, spec)
	t.Logf("create+start+wait+delete of /bin/true: %v", time.Since(start))
	if code != 0 {
		t.Fatalf("exit %d, stdout %q stderr %q", code, out, errOut)
	}
	if _, err := r.Load("true1"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("state left after delete: %v", err)
	}
}

func TestRunSeesFloor(t *testing.T) {
	needRoot(t)
	leakCheck(t, "floor1")
	r := newTestRuntime(t)
	bundle, spec := busyboxBundle(t)
	spec.Process.Args = []string{"/bin/sh", "-c", `
id -u; hostname; cat /proc/self/uid_map;
grep -E '^(NoNewPrivs|Seccomp|CapEff|CapBnd):' /proc/self/status;
touch /etc/x 2>/dev/null && echo rootfs-writable || echo rootfs-ro;
touch /tmp/x && echo tmp-writable;
cat /proc/kcore 2>&1 | head -c 20; echo "kcore-size:$(cat /proc/kcore | wc -c)";
ls /proc/self/fd | wc -l;
cat /etc/hostname`}
	code, out, errOut := run(t, r, "floor1", bundle, spec)
	t.Logf("stdout:\n%s\nstderr:\n%s", out, errOut)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"bulwark-test", "NoNewPrivs:\t1", "Seccomp:\t2", "CapEff:\t0000000000000000", "CapBnd:\t0000000000000000", "rootfs-ro", "tmp-writable", "kcore-size:0"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in output", want)
		}
	}
	if strings.Contains(out, "\n         0          0") {
		t.Errorf("identity uid mapping: %s", out)
	}
}

func TestExitCodeAndSignal(t *testing.T) {
	needRoot(t)
	leakCheck(t, "exit1")
	r := newTestRuntime(t)
	bundle, spec := busyboxBundle(t)
	spec.Process.Args = []string{"/bin/sh", "-c", "exit 7"}
	if code, _, _ := run(t, r, "exit1", bundle, spec); code != 7 {
		t.Fatalf("exit code %d, want 7", code)
	}
	c := startSleeper(t, r, "exit2", bundle, spec)
	if err := c.Start(); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("second start: %v, want ErrInvalidState", err)
	}
	// SIGTERM would be ignored: pid 1 of a pid namespace only gets signals it handles.
	if err := c.Signal(syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	if code, _ := c.Wait(); code != 128+int(syscall.SIGKILL) {
		t.Fatalf("exit %d, want %d", code, 128+int(syscall.SIGKILL))
	}
	if st, _ := c.State(); st.Status != specs.ContainerState(StatusStopped) {
		t.Fatalf("status %s, want stopped", st.Status)
	}
}

func TestCreateFailureLeavesNothing(t *testing.T) {
	needRoot(t)
	leakCheck(t, "bad1")
	r := newTestRuntime(t)
	bundle, spec := busyboxBundle(t)
	spec.Process.Args = []string{"/bin/does-not-exist"}
	_, err := r.Create("bad1", bundle, spec, IO{})
	var ie *InitError
	if !errors.As(err, &ie) || ie.Layer != "process" {
		t.Fatalf("create: %v, want an InitError from layer process", err)
	}
	t.Logf("reported: %v", err)
	if _, err := os.Stat(r.containerDir("bad1")); !os.IsNotExist(err) {
		t.Fatalf("state dir left behind: %v", err)
	}
}

func TestExec(t *testing.T) {
	needRoot(t)
	leakCheck(t, "exec1")
	r := newTestRuntime(t)
	bundle, spec := busyboxBundle(t)
	c := startSleeper(t, r, "exec1", bundle, spec)
	outR, outW, _ := os.Pipe()
	p, err := c.Exec(&specs.Process{
		Args: []string{"/bin/sh", "-c", "hostname; grep -E '^(NoNewPrivs|Seccomp|CapEff):' /proc/self/status; cat /proc/self/uid_map; echo pid1=$(cat /proc/1/cmdline | tr '\\0' ' ')"},
		Env:  []string{"PATH=/bin"}, Cwd: "/",
	}, IO{Stdout: outW, Stderr: outW})
	outW.Close()
	if err != nil {
		t.Fatalf("exec: %v", err)
	}
	var out bytes.Buffer
	out.ReadFrom(outR)
	code, err := p.Wait()
	t.Logf("exec output:\n%s", out.String())
	if err != nil || code != 0 {
		t.Fatalf("exec exit %d, %v", code, err)
	}
	for _, want := range []string{"bulwark-test", "NoNewPrivs:\t1", "Seccomp:\t2", "CapEff:\t0000000000000000", "pid1=/bin/sleep 100"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %q", want)
		}
	}
	pids, err := c.Processes()
	if err != nil || len(pids) != 1 {
		t.Errorf("processes %v, %v; want just init", pids, err)
	}
	// A long-running exec'd process is in every hierarchy of the container's cgroup.
	p2, err := c.Exec(&specs.Process{Args: []string{"/bin/sleep", "100"}, Cwd: "/"}, IO{})
	if err != nil {
		t.Fatal(err)
	}
	cgs, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", p2.Pid))
	for _, line := range strings.Split(strings.TrimSpace(string(cgs)), "\n") {
		if strings.Contains(line, ":pids:") || strings.Contains(line, ":memory:") || strings.Contains(line, ":freezer:") {
			if !strings.HasSuffix(line, "/bulwark/exec1") {
				t.Errorf("exec'd process outside the container cgroup: %s", line)
			}
		}
	}
	if pids, _ := c.Processes(); len(pids) != 2 {
		t.Errorf("processes %v, want init and the exec'd sleep", pids)
	}
	syscall.Kill(p2.Pid, syscall.SIGKILL)
	p2.Wait()
	if err := c.Pause(); err != nil {
		t.Fatalf("pause: %v", err)
	}
	if err := c.Resume(); err != nil {
		t.Fatalf("resume: %v", err)
	}
}

// TestDeleteAfterCrashMidCreate: a runtime that died after making the state dir, taking an id
// range and creating the cgroup (but before any init existed) leaves a container that Delete
// removes completely; a second Delete is a no-op.
func TestDeleteAfterCrashMidCreate(t *testing.T) {
	needRoot(t)
	leakCheck(t, "crash1")
	r := newTestRuntime(t)
	dir := r.containerDir("crash1")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	st := newStateFile("crash1", "/nonexistent", r.opts.Tenant, nil)
	if err := writeState(dir, st); err != nil {
		t.Fatal(err)
	}
	alloc, err := idmap.Open(r.opts.IDMapDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alloc.Acquire(r.opts.Tenant, r.rangeHolder("crash1")); err != nil {
		t.Fatal(err)
	}
	cg, err := cgroups.New(st.Cgroup)
	if err != nil {
		t.Fatal(err)
	}
	limits, err := cg.Create(nil)
	if err == nil {
		err = limits()
	}
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.Load("crash1")
	if err != nil {
		t.Fatal(err)
	}
	// Nobody holds the directory lock: the creator is dead, and so is the container (runc: a
	// container whose init is gone is stopped).
	if s, _ := c.State(); s.Status != specs.ContainerState(StatusStopped) {
		t.Fatalf("status %s, want stopped", s.Status)
	}
	if err := c.Delete(false); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(false); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	if rs, _ := alloc.List(); len(rs) != 0 {
		t.Fatalf("id ranges still held: %+v", rs)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("state dir left: %v", err)
	}
}

// TestCrashedCreateListed: a creator killed before it wrote state.json leaves only the state
// directory. It is listed (stopped), its state can be read, and a plain delete removes it; a
// "creating" state whose creator still holds the directory lock stays creating.
func TestCrashedCreateListed(t *testing.T) {
	needRoot(t)
	leakCheck(t, "crash2")
	r := newTestRuntime(t)
	dir := r.containerDir("crash2")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	list, err := r.List()
	if err != nil || len(list) != 1 || list[0].ID != "crash2" || list[0].Status != specs.ContainerState(StatusStopped) {
		t.Fatalf("list %+v, %v: want crash2 stopped", list, err)
	}
	c, err := r.Load("crash2")
	if err != nil {
		t.Fatal(err)
	}
	// A live creator holds the lock: the container is being created, not dead.
	unlock, err := lockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := c.State(); err != nil || s.Status != specs.ContainerState(StatusCreating) {
		t.Errorf("with the creator's lock held: %s, %v; want creating", s.Status, err)
	}
	unlock()
	if err := c.Delete(false); err != nil {
		t.Fatalf("plain delete: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("state dir left: %v", err)
	}
	if list, _ := r.List(); len(list) != 0 {
		t.Fatalf("list after delete: %+v", list)
	}
}

// TestRuntimeBinaryNotWritable (CVE-2019-5736): the handle setup children execute from refuses
// writes, both directly and reopened through /proc.
func TestRuntimeBinaryNotWritable(t *testing.T) {
	needRoot(t)
	f, err := runtimeBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", f.Fd()), os.O_WRONLY, 0); err == nil {
		t.Fatal("runtime binary handle reopened for writing")
	}
	// Beyond ETXTBSY (the binary is running): the mount itself is read-only, so even a stopped
	// runtime's file could not be written through this path.
	var st syscall.Statfs_t
	if err := syscall.Fstatfs(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if st.Flags&0x1 == 0 { // ST_RDONLY
		t.Fatalf("runtime binary handle is on a writable mount (statfs flags %#x)", st.Flags)
	}
}

// TestMemfdSelfSealed: the fallback copy refuses every change.
func TestMemfdSelfSealed(t *testing.T) {
	src, err := setupHelper()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(src)
	f, err := memfdBinary(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("x")); err == nil {
		t.Fatal("sealed memfd accepted a write")
	}
	seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
	if err != nil || seals&unix.F_SEAL_WRITE == 0 || seals&unix.F_SEAL_SEAL == 0 {
		t.Fatalf("seals %#x, %v", seals, err)
	}
}

// TestDeleteWithUnwaitedExec: Delete must not hang on an exec'd process nobody waited for (it is
// our child, and init cannot exit while it is an unreaped zombie of its pid namespace).
func TestDeleteWithUnwaitedExec(t *testing.T) {
	needRoot(t)
	leakCheck(t, "unwaited1")
	r := newTestRuntime(t)
	bundle, spec := busyboxBundle(t)
	spec.Process.Args = []string{"/bin/sleep", "100"}
	c, err := r.Create("unwaited1", bundle, spec, IO{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(&specs.Process{Args: []string{"/bin/sleep", "100"}, Cwd: "/"}, IO{}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Delete(true) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("delete hung")
	}
}

// TestNoDescriptorLeak: a full create/start/wait/delete cycle (with an exec) leaves the runtime
// process with the descriptors it had (the shared runtime-binary handle aside, made once).
func TestNoDescriptorLeak(t *testing.T) {
	needRoot(t)
	if _, err := runtimeBinary(); err != nil {
		t.Fatal(err)
	}
	r := newTestRuntime(t)
	bundle, spec := busyboxBundle(t)
	spec.Process.Args = []string{"/bin/sleep", "100"}
	count := func() int {
		ents, _ := os.ReadDir("/proc/self/fd")
		return len(ents)
	}
	cycle := func(id string) {
		c, err := r.Create(id, bundle, spec, IO{})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		p, err := c.Exec(&specs.Process{Args: []string{"/bin/true"}, Cwd: "/"}, IO{})
		if err != nil {
			t.Fatal(err)
		}
		p.Wait()
		if err := c.Delete(true); err != nil {
			t.Fatal(err)
		}
	}
	cycle("fdleak0") // warm caches (seccomp, MAC detection)
	before := count()
	for i := 1; i <= 3; i++ {
		cycle(fmt.Sprintf("fdleak%d", i))
	}
	// The root mount, mount namespace and pidfd a creator holds for each container are closed on a
	// goroutine once its init has exited (heldRoot.untilExit), which may run just after Delete.
	for deadline := time.Now().Add(5 * time.Second); count() > before && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if after := count(); after > before {
		t.Fatalf("descriptors: %d before, %d after three cycles", before, after)
	}
}

// TestLongIDHostname: the default hostname (the id) is cut to what the kernel accepts.
func TestLongIDHostname(t *testing.T) {
	needRoot(t)
	id := strings.Repeat("h", 100)
	leakCheck(t, id)
	r := newTestRuntime(t)
	bundle, spec := busyboxBundle(t)
	spec.Hostname = ""
	spec.Process.Args = []string{"/bin/hostname"}
	code, out, errOut := run(t, r, id, bundle, spec)
	if code != 0 || strings.TrimSpace(out) != id[:63] {
		t.Fatalf("exit %d, hostname %q, stderr %q", code, out, errOut)
	}
}

// TestInitAsRecorded: Init answers, without reading the state, the pid and start time Create
// recorded in it, and only in the process that created the container.
func TestInitAsRecorded(t *testing.T) {
	needRoot(t)
	leakCheck(t, "init1")
	r := newTestRuntime(t)
	bundle, spec := busyboxBundle(t)
	c, err := r.Create("init1", bundle, spec, IO{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	defer func() {
		if err := c.Delete(true); err != nil {
			t.Errorf("delete: %v", err)
		}
	}()
	pid, start, err := c.Init()
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	st, err := readState(c.dir)
	if err != nil {
		t.Fatal(err)
	}
	if pid != st.Pid || start != st.InitStartTime || start == 0 || start != procstat.StartTime(pid) {
		t.Errorf("Init = %d, %d; state records %d, %d; /proc says %d", pid, start, st.Pid, st.InitStartTime, procstat.StartTime(pid))
	}
	loaded, err := r.Load("init1")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := loaded.Init(); !errors.Is(err, ErrNoExitStatus) {
		t.Errorf("Init of a loaded container: %v, want ErrNoExitStatus", err)
	}
}

// TestExitCountersOfCreator: the process that created a container reads its exit counters from the
// cgroup it made, without its state (read by any other process, which fails on a state it cannot
// parse).
func TestExitCountersOfCreator(t *testing.T) {
	needRoot(t)
	leakCheck(t, "counters1")
	r := newTestRuntime(t)
	bundle, spec := busyboxBundle(t)
	c, err := r.Create("counters1", bundle, spec, IO{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	defer func() {
		if err := c.Delete(true); err != nil {
			t.Errorf("delete: %v", err)
		}
	}()
	loaded, err := r.Load("counters1")
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(c.dir, stateName)
	if err := os.Rename(state, state+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(state, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, cerr := c.ExitCounters()
	_, _, lerr := loaded.ExitCounters()
	if err := os.Rename(state+".away", state); err != nil {
		t.Fatal(err)
	}
	if cerr != nil {
		t.Errorf("ExitCounters of the creator: %v", cerr)
	}
	if lerr == nil {
		t.Error("ExitCounters of a loaded container did not read its state: want the parse error")
	}
}
