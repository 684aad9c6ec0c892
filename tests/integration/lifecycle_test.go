package integration

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/sandbox"
	"bulwark.dev/bulwark/tests/internal/report"
	"bulwark.dev/bulwark/tests/internal/testenv"
)

// execProbe runs the probe with args in c through Exec and returns its report.
func execProbe(t *testing.T, e *testenv.Env, c *testenv.Ctr, args ...string) *report.Report {
	t.Helper()
	out, errf := e.OutFile("exec-stdout"), e.OutFile("exec-stderr")
	defer out.Close()
	defer errf.Close()
	p, err := c.Exec(&specs.Process{Args: probe(args...), Env: []string{"PATH=/bin"}, Cwd: "/"},
		sandbox.IO{Stdout: out, Stderr: errf})
	if err != nil {
		t.Fatalf("exec: %v", err)
	}
	code, err := p.Wait()
	if err != nil || code != 0 {
		b, _ := os.ReadFile(errf.Name())
		t.Fatalf("exec'd probe: exit %d, %v\n%s", code, err, b)
	}
	b, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	return testenv.ParseReport(t, b)
}

// TestExecSameConfinement: a process added with Exec sees exactly what init sees: namespaces,
// id maps, capabilities, no_new_privs, seccomp filters, cgroup, Landlock, rlimits, mounts, and
// the same refusals.
func TestExecSameConfinement(t *testing.T) {
	e := testenv.NewEnv(t, "tenant-exec")
	// init probes after 3 s, by which time the exec'd probe has reported.
	c := e.MustCreate(nil, testenv.Spec(probe("sleep", "3")))
	if err := c.Start(); err != nil {
		t.Fatalf("start: %v%s", err, c.ErrText())
	}
	ex := execProbe(t, e, c, "all")
	if code := c.WaitExit(); code != 0 {
		t.Fatalf("init exited %d%s", code, c.ErrText())
	}
	in := c.Report()
	requireAll(t, in)
	requireAll(t, ex)

	same := func(what string, a, b any) {
		t.Helper()
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s differs: init %+v, exec %+v", what, a, b)
		}
	}
	same("namespaces", in.NS, ex.NS)
	same("uid_map", in.IDs.UIDMap, ex.IDs.UIDMap)
	same("gid_map", in.IDs.GIDMap, ex.IDs.GIDMap)
	same("capabilities", in.Caps, ex.Caps)
	same("no_new_privs", in.Status.NoNewPrivs, ex.Status.NoNewPrivs)
	same("seccomp mode", in.Status.Seccomp, ex.Status.Seccomp)
	same("seccomp filter count", in.Status.SeccompFilters, ex.Status.SeccompFilters)
	same("cgroup", in.Cgroup.Lines, ex.Cgroup.Lines)
	same("landlock", in.Landlock, ex.Landlock)
	same("rlimits core", in.Rlimits["core"], ex.Rlimits["core"])
	same("rlimits nproc", in.Rlimits["nproc"], ex.Rlimits["nproc"])
	same("rlimits nofile max", in.Rlimits["nofile"].Max, ex.Rlimits["nofile"].Max)
	same("forbidden operations", in.Forbidden, ex.Forbidden)
	same("writable paths", in.Writable, ex.Writable)
	same("mount count", len(in.Mounts), len(ex.Mounts))
	same("hostname", in.Host, ex.Host)
	t.Run("exec/forbidden", func(t *testing.T) { assertForbidden(t, ex.Forbidden) })
	t.Run("exec/fds", func(t *testing.T) {
		for fd, target := range ex.FDs {
			if fd != "0" && fd != "1" && fd != "2" {
				t.Errorf("fd %s open in the exec'd process: %s", fd, target)
			}
		}
	})
	if ex.Status.Seccomp != 2 || ex.Status.NoNewPrivs != 1 {
		t.Errorf("exec'd process: seccomp %d nnp %d", ex.Status.Seccomp, ex.Status.NoNewPrivs)
	}
}

// TestPauseResume: Pause freezes every process (freezer cgroup FROZEN, state paused) and Resume
// thaws them.
func TestPauseResume(t *testing.T) {
	e := testenv.NewEnv(t, "tenant-life")
	c := e.MustCreate(nil, testenv.Spec([]string{"/bin/sleep", "30"}))
	if err := c.Start(); err != nil {
		t.Fatalf("start: %v%s", err, c.ErrText())
	}
	pid := c.MustState().Pid
	freezer, err := testenv.HostCgroupPath(pid, "freezer")
	if err != nil {
		t.Fatal(err)
	}
	freezerState := func() string {
		b, _ := os.ReadFile(filepath.Join(freezer, "freezer.state"))
		return strings.TrimSpace(string(b))
	}
	if err := c.Pause(); err != nil {
		t.Fatalf("pause: %v", err)
	}
	if st := c.MustState(); string(st.Status) != string(sandbox.StatusPaused) {
		t.Errorf("state after pause %q", st.Status)
	}
	if s := freezerState(); s != "FROZEN" {
		t.Errorf("freezer.state %q after pause", s)
	}
	if err := c.Resume(); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if st := c.MustState(); string(st.Status) != string(sandbox.StatusRunning) {
		t.Errorf("state after resume %q", st.Status)
	}
	if s := freezerState(); s != "THAWED" {
		t.Errorf("freezer.state %q after resume", s)
	}
	if err := c.Signal(syscall.SIGKILL, true); err != nil {
		t.Fatalf("kill: %v", err)
	}
	c.WaitExit()
}

// TestCgroupLimits: the default memory and pids limits (the spec sets none) and an explicit
// memory limit are in force in the container's cgroup.
func TestCgroupLimits(t *testing.T) {
	e := testenv.NewEnv(t, "tenant-cg")
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("read %s: %v", p, err)
		}
		return strings.TrimSpace(string(b))
	}
	for _, tc := range []struct {
		name    string
		opts    []testenv.SpecOpt
		wantMem string
	}{{"defaults", nil, ""}, {"explicit-64MiB", []testenv.SpecOpt{testenv.WithMemoryLimit(64 << 20)}, strconv.Itoa(64 << 20)}} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.For(t)
			c := e.MustCreate(nil, testenv.Spec(probe(), tc.opts...))
			pid := c.MustState().Pid
			mem, err := testenv.HostCgroupPath(pid, "memory")
			if err != nil {
				t.Fatal(err)
			}
			pids, err := testenv.HostCgroupPath(pid, "pids")
			if err != nil {
				t.Fatal(err)
			}
			if mem == "/sys/fs/cgroup/memory" || pids == "/sys/fs/cgroup/pids" {
				t.Fatalf("init is in the root cgroup (%s, %s)", mem, pids)
			}
			limit := read(filepath.Join(mem, "memory.limit_in_bytes"))
			if n, _ := strconv.ParseUint(limit, 10, 64); n == 0 || n >= 1<<62 {
				t.Errorf("memory.limit_in_bytes %s: unlimited", limit)
			}
			if tc.wantMem != "" && limit != tc.wantMem {
				t.Errorf("memory.limit_in_bytes %s, want %s", limit, tc.wantMem)
			}
			if pm := read(filepath.Join(pids, "pids.max")); pm == "max" || pm == "" {
				t.Errorf("pids.max %q: no default pids limit", pm)
			}
			// devices: deny all, then only the minimal /dev set (and the private devpts).
			devs, err := testenv.HostCgroupPath(pid, "devices")
			if err != nil {
				t.Fatal(err)
			}
			allowed := map[string]bool{"c 1:3 rwm": true, "c 1:5 rwm": true, "c 1:7 rwm": true, "c 1:8 rwm": true,
				"c 1:9 rwm": true, "c 5:0 rwm": true, "c 5:2 rwm": true, "c 136:* rwm": true}
			for _, line := range strings.Split(read(filepath.Join(devs, "devices.list")), "\n") {
				f := strings.Fields(line)
				if len(f) != 3 || !allowed[f[0]+" "+f[1]+" rwm"] || strings.Trim(f[2], "rwm") != "" {
					t.Errorf("devices.list allows %q beyond the minimal /dev set", line)
				}
			}
			if st, err := c.Stats(); err != nil {
				t.Errorf("stats: %v", err)
			} else if strconv.FormatUint(st.MemoryLimit, 10) != limit {
				t.Errorf("Stats.MemoryLimit %d, cgroup says %s", st.MemoryLimit, limit)
			}
		})
	}
}

// TestDeleteLeavesNothing: Delete of a running container with an exec'd process removes every
// process, cgroup, mount, state directory and id range at once; a second Delete is a no-op and
// the id is gone.
func TestDeleteLeavesNothing(t *testing.T) {
	e := testenv.NewEnv(t, "tenant-life")
	c := e.MustCreate(nil, testenv.Spec([]string{"/bin/sleep", "30"}))
	if err := c.Start(); err != nil {
		t.Fatalf("start: %v%s", err, c.ErrText())
	}
	if _, err := c.Exec(&specs.Process{Args: []string{"/bin/sleep", "30"}, Cwd: "/"}, sandbox.IO{}); err != nil {
		t.Fatalf("exec: %v", err)
	}
	if ps, err := c.Processes(); err != nil || len(ps) != 2 {
		t.Errorf("Processes: %v %v, want init and the exec'd sleep", ps, err)
	}
	if err := testenv.DeleteWithin(c.Container, true); err != nil {
		t.Fatalf("delete: %v", err)
	}
	e.Leaks.AssertNone(t)
	if err := testenv.DeleteWithin(c.Container, true); err != nil {
		t.Errorf("second delete: %v", err)
	}
	if _, err := e.RT.Load(c.ID); !errors.Is(err, sandbox.ErrNotExist) {
		t.Errorf("Load after delete: %v, want ErrNotExist", err)
	}
}

// TestCrashedInitThenDelete: the init of a created container is SIGKILLed from the host (a crash
// before Start); Delete still cleans everything up.
func TestCrashedInitThenDelete(t *testing.T) {
	e := testenv.NewEnv(t, "tenant-life")
	c := e.MustCreate(nil, testenv.Spec(probe()))
	pid := c.MustState().Pid
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill init %d: %v", pid, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if st, err := c.State(); err == nil && string(st.Status) == string(sandbox.StatusStopped) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st, err := c.State(); err != nil || string(st.Status) != string(sandbox.StatusStopped) {
		t.Errorf("state after the init was killed: %+v %v, want stopped", st.Status, err)
	}
	if err := testenv.DeleteWithin(c.Container, false); err != nil {
		t.Fatalf("delete after crash: %v", err)
	}
	e.Leaks.AssertNone(t)
}

// TestBadInputLeavesNothing: an id in use, a hostile mount destination and a missing rootfs are
// refused with a clear error, and the refused creates leave nothing.
func TestBadInputLeavesNothing(t *testing.T) {
	e := testenv.NewEnv(t, "tenant-life")
	c := e.MustCreate(nil, testenv.Spec(probe()))
	bundle := testenv.Bundle(t, testenv.Spec(probe()))
	if _, err := e.RT.Create(c.ID, bundle, testenv.Spec(probe()), sandbox.IO{}); !errors.Is(err, sandbox.ErrExist) {
		t.Errorf("Create with an id in use: %v, want ErrExist", err)
	}
	hostile := testenv.Spec(probe(), testenv.WithMount(specs.Mount{Destination: "../../etc", Type: "tmpfs", Source: "tmpfs"}))
	if _, err := e.Create(nil, hostile); err == nil {
		t.Errorf("Create with mount destination ../../etc succeeded")
	}
	// A symlink in the image pointing at a host path: the mount target must resolve inside the
	// rootfs (RESOLVE_IN_ROOT), so nothing is created or mounted in the host directory.
	hostDir := t.TempDir()
	e.Prepare = func(rootfs string) {
		if err := os.Symlink(hostDir, filepath.Join(rootfs, "escape")); err != nil {
			t.Fatal(err)
		}
	}
	symlinked := testenv.Spec(probe("mounts"), testenv.WithMount(specs.Mount{Destination: "/escape/sub", Type: "tmpfs", Source: "tmpfs"}))
	if sc, err := e.Create(nil, symlinked); err != nil {
		t.Logf("symlinked mount target refused: %v", err)
	} else {
		t.Logf("symlinked mount target created inside the rootfs")
		testenv.DeleteWithin(sc.Container, true)
	}
	e.Prepare = nil
	if ents, _ := os.ReadDir(hostDir); len(ents) != 0 {
		t.Errorf("ESCAPE: a mount target through an image symlink reached the host directory %s: %v", hostDir, ents)
	}
	noRoot := testenv.Spec(probe())
	id := e.Leaks.Track(testenv.UniqueID(t))
	if _, err := e.RT.Create(id, t.TempDir(), noRoot, sandbox.IO{}); err == nil || !strings.Contains(err.Error(), "rootfs") {
		t.Errorf("Create without a rootfs: %v, want an error naming the rootfs", err)
	}
	if err := testenv.DeleteWithin(c.Container, true); err != nil {
		t.Fatal(err)
	}
	e.Leaks.AssertNone(t)
}

// TestMemoryLimitEnforced: a process touching more memory than its limit is OOM-killed, and the
// kill is counted in Stats.
func TestMemoryLimitEnforced(t *testing.T) {
	e := testenv.NewEnv(t, "tenant-cg")
	c := e.MustCreate(nil, testenv.Spec(probe("alloc", "256"), testenv.WithMemoryLimit(32<<20)))
	if err := c.Start(); err != nil {
		t.Fatalf("start: %v%s", err, c.ErrText())
	}
	code := c.WaitExit()
	if code == 0 {
		t.Fatalf("touched 256 MiB under a 32 MiB limit and exited 0")
	}
	st, err := c.Stats()
	if err != nil {
		t.Fatalf("stats of the stopped container: %v", err)
	}
	if st.OOMKills == 0 {
		t.Errorf("exit %d but Stats.OOMKills is 0: %+v", code, st)
	}
	t.Logf("exit %d, stats %+v", code, st)
}

// TestPidsLimitEnforced: with pids.max 16, the 16th task cannot be created (EAGAIN from fork).
func TestPidsLimitEnforced(t *testing.T) {
	e := testenv.NewEnv(t, "tenant-cg")
	r, _ := e.Run(testenv.Spec(probe("spawn", "40"), testenv.WithPidsLimit(16)))
	// The probe's own threads count as tasks too, so fewer than 15 children fit.
	if r.Spawn.Started >= 16 || r.Spawn.Error != "EAGAIN" {
		t.Errorf("spawned %d children, then %q; want fewer than 16, then EAGAIN", r.Spawn.Started, r.Spawn.Error)
	}
}
