package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"bulwark.dev/bulwark/tests/internal/report"
	"bulwark.dev/bulwark/tests/internal/testenv"
)

// runcCLI drives $BULWARK_BIN/bulwark-runc with a private --root.
type runcCLI struct {
	t     *testing.T
	bin   string
	root  string
	leaks *testenv.Leaks
}

func newRuncCLI(t *testing.T) *runcCLI {
	t.Helper()
	testenv.RequireRoot(t)
	bin := testenv.RuntimeBin(t)
	root := t.TempDir()
	return &runcCLI{t: t, bin: bin, root: root, leaks: testenv.NewLeaks(t, root)}
}

// cliTimeout bounds every bulwark-runc command, so a hang fails one test, not the package.
const cliTimeout = time.Minute

// cmd returns the command for args, with stdout/stderr captured by the caller.
func (r *runcCLI) cmd(args ...string) *exec.Cmd {
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	r.t.Cleanup(cancel)
	// --state-root too: the host-wide id allocator, label store and audit log would otherwise
	// live under /var/lib/bulwark; the test keeps them, like everything, in its temp dir.
	return exec.CommandContext(ctx, r.bin, append([]string{"--root", r.root, "--state-root", r.root}, args...)...)
}

// run runs args and returns stdout, failing the test on a non-zero exit.
func (r *runcCLI) run(args ...string) []byte {
	r.t.Helper()
	var out, errb bytes.Buffer
	c := r.cmd(args...)
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Run(); err != nil {
		r.t.Fatalf("bulwark-runc %v: %v\nstdout: %s\nstderr: %s", args, err, out.Bytes(), errb.Bytes())
	}
	return out.Bytes()
}

func (r *runcCLI) state(id string) (map[string]any, error) {
	out, err := r.cmd("state", id).Output()
	if err != nil {
		return nil, err
	}
	var st map[string]any
	return st, json.Unmarshal(out, &st)
}

// TestRuncCLIRun: `bulwark-runc run` of a bundle runs the probe confined (the main floor items,
// no descriptor of the caller's inside) and removes the container when it exits.
func TestRuncCLIRun(t *testing.T) {
	r := newRuncCLI(t)
	bundle := testenv.Bundle(t, testenv.Spec(probe("all")))
	r.leaks.Dir(bundle)
	id := r.leaks.Track(testenv.UniqueID(t))
	c := r.cmd("run", "--bundle", bundle, id)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	// A careless caller hands the runtime a host directory as fd 3 (CVE-2024-21626 lesson): it
	// must not reach the container.
	hostRoot, err := os.Open("/")
	if err != nil {
		t.Fatal(err)
	}
	defer hostRoot.Close()
	c.ExtraFiles = []*os.File{hostRoot}
	if err := c.Run(); err != nil {
		t.Fatalf("run: %v\n%s", err, errb.Bytes())
	}
	rep := testenv.ParseReport(t, out.Bytes())
	assertCoreFloor(t, rep)
	if _, err := r.state(id); err == nil {
		t.Errorf("container %s still exists after run exited", id)
	}
}

// assertCoreFloor checks the floor items every path into a sandbox must show.
func assertCoreFloor(t *testing.T, rep *report.Report) {
	t.Helper()
	if m := rep.IDs.UIDMap; len(m) != 1 || m[0].Inside != 0 || m[0].Outside < 65536 {
		t.Errorf("uid_map %+v, want container 0 on a subordinate host id", m)
	}
	host := testenv.HostNS(t)
	for _, ns := range []string{"user", "mnt", "pid", "ipc", "uts", "cgroup", "net"} {
		if rep.NS[ns] == host[ns] {
			t.Errorf("%s namespace is the host's", ns)
		}
	}
	if c := rep.Caps; c.Inh|c.Prm|c.Eff|c.Bnd|c.Amb != 0 {
		t.Errorf("caps %+v, want all zero", c)
	}
	if rep.Status.NoNewPrivs != 1 || rep.Status.Seccomp != 2 {
		t.Errorf("nnp %d seccomp %d", rep.Status.NoNewPrivs, rep.Status.Seccomp)
	}
	if m := rep.MountAt("/"); m == nil || !m.Has("ro") {
		t.Errorf("rootfs not read-only: %+v", m)
	}
	for fd, target := range rep.FDs {
		if fd != "0" && fd != "1" && fd != "2" {
			t.Errorf("fd %s open inside: %s", fd, target)
		}
	}
	assertForbidden(t, rep.Forbidden)
}

// TestRuncCLILifecycle: create (init waits) → state created → start → stopped → delete, with the
// runc state JSON at each step.
func TestRuncCLILifecycle(t *testing.T) {
	r := newRuncCLI(t)
	bundle := testenv.Bundle(t, testenv.Spec(probe("ids")))
	r.leaks.Dir(bundle)
	id := r.leaks.Track(testenv.UniqueID(t))
	outFile, err := os.Create(bundle + "/probe.out")
	if err != nil {
		t.Fatal(err)
	}
	defer outFile.Close()
	// The container's init inherits create's stdio: a pipe there would keep Run waiting until
	// the container exits, so both go to files.
	errFile, err := os.Create(bundle + "/create.err")
	if err != nil {
		t.Fatal(err)
	}
	defer errFile.Close()
	c := r.cmd("create", "--bundle", bundle, "--pid-file", bundle+"/pid", id)
	c.Stdout, c.Stderr = outFile, errFile
	if err := c.Run(); err != nil {
		t.Fatalf("create: %v\n%s", err, mustRead(t, errFile.Name()))
	}
	t.Cleanup(func() { r.cmd("delete", "--force", id).Run() })
	st, err := r.state(id)
	if err != nil || st["status"] != "created" {
		t.Fatalf("state after create: %v %v", st, err)
	}
	pidb, _ := os.ReadFile(bundle + "/pid")
	if fmt.Sprint(st["pid"]) != strings.TrimSpace(string(pidb)) {
		t.Errorf("pid-file %q, state pid %v", pidb, st["pid"])
	}
	if !strings.Contains(string(r.run("list")), id) {
		t.Errorf("list does not show %s", id)
	}
	r.run("start", id)
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err = r.state(id)
		if err == nil && st["status"] == "stopped" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not stopped after start: %v %v", st, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	rep := testenv.ParseReport(t, mustRead(t, bundle+"/probe.out"))
	if rep.IDs == nil || rep.IDs.UIDMap[0].Outside == 0 {
		t.Errorf("probe under create/start: %+v", rep.IDs)
	}
	r.run("delete", id)
	if _, err := r.state(id); err == nil {
		t.Errorf("state after delete succeeded")
	}
}

// TestRuncCLIKilledMidCreate: `bulwark-runc create` is SIGKILLed at several points of its run;
// `delete --force` afterwards must leave nothing (state, cgroups, mounts, processes, id range).
func TestRuncCLIKilledMidCreate(t *testing.T) {
	r := newRuncCLI(t)
	for _, ms := range []int{2, 5, 10, 15, 20, 30, 50, 80, 120} {
		bundle := testenv.Bundle(t, testenv.Spec(probe()))
		r.leaks.Dir(bundle)
		id := r.leaks.Track(testenv.UniqueID(t))
		c := r.cmd("create", "--bundle", bundle, id)
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(ms) * time.Millisecond)
		c.Process.Signal(syscall.SIGKILL)
		c.Wait()
		var errb bytes.Buffer
		d := r.cmd("delete", "--force", id)
		d.Stderr = &errb
		derr := d.Run()
		t.Logf("killed after %dms; delete --force: %v %s", ms, derr, strings.TrimSpace(errb.String()))
		r.leaks.AssertNone(t)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRuncCLIExec: `bulwark-runc exec` adds a process with the init's confinement (the static
// binary's exec path, as containerd's shim uses it).
func TestRuncCLIExec(t *testing.T) {
	r := newRuncCLI(t)
	bundle := testenv.Bundle(t, testenv.Spec(probe("sleep", "3")))
	r.leaks.Dir(bundle)
	id := r.leaks.Track(testenv.UniqueID(t))
	initOut, err := os.Create(bundle + "/init.out")
	if err != nil {
		t.Fatal(err)
	}
	defer initOut.Close()
	c := r.cmd("create", "--bundle", bundle, id)
	c.Stdout, c.Stderr = initOut, initOut // files: a pipe would keep create waiting for the container
	if err := c.Run(); err != nil {
		t.Fatalf("create: %v\n%s", err, mustRead(t, initOut.Name()))
	}
	t.Cleanup(func() { r.cmd("delete", "--force", id).Run() })
	r.run("start", id)
	ex := testenv.ParseReport(t, r.run("exec", id, "/bin/probe", "all"))
	requireAll(t, ex)
	assertCoreFloor(t, ex)
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := r.state(id)
		if err != nil || st["status"] == "stopped" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("init did not finish: %v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	in := testenv.ParseReport(t, mustRead(t, initOut.Name()))
	requireAll(t, in)
	for what, pair := range map[string][2]any{
		"namespaces":     {in.NS, ex.NS},
		"capabilities":   {*in.Caps, *ex.Caps},
		"seccomp":        {[2]int{in.Status.Seccomp, in.Status.SeccompFilters}, [2]int{ex.Status.Seccomp, ex.Status.SeccompFilters}},
		"no_new_privs":   {in.Status.NoNewPrivs, ex.Status.NoNewPrivs},
		"cgroup":         {strings.Join(in.Cgroup.Lines, ","), strings.Join(ex.Cgroup.Lines, ",")},
		"landlock":       {*in.Landlock, *ex.Landlock},
		"uid_map":        {fmt.Sprint(in.IDs.UIDMap), fmt.Sprint(ex.IDs.UIDMap)},
		"forbidden":      {fmt.Sprint(in.Forbidden), fmt.Sprint(ex.Forbidden)},
		"rlimit nofile":  {in.Rlimits["nofile"].Max, ex.Rlimits["nofile"].Max},
		"writable paths": {fmt.Sprint(in.Writable), fmt.Sprint(ex.Writable)},
	} {
		if !reflect.DeepEqual(pair[0], pair[1]) {
			t.Errorf("%s differs: init %+v, exec %+v", what, pair[0], pair[1])
		}
	}
	r.run("delete", id)
}
