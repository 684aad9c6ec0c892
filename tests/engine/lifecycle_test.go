package engine

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"bulwark.dev/bulwark/tests/internal/clitest"
	"bulwark.dev/bulwark/tests/internal/testenv"
)

// TestParallelRuns: 50 concurrent `bulwark run --rm` all succeed, the audit chain written by 50
// processes at once verifies and holds each one's story, and nothing is left.
func TestParallelRuns(t *testing.T) {
	f := newFixture(t)
	n := 50
	if s := os.Getenv("BULWARK_PARALLEL_RUNS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = f.name(t, "par")
	}
	start := time.Now()
	var wg sync.WaitGroup
	results := make([]clitest.Result, n)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = clitest.Run(t, f.root, "run", "--rm", "--name", ids[i], "busybox:1", "sh", "-c", "echo "+ids[i])
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	for i, r := range results {
		if r.Code != 0 || r.Stdout != ids[i]+"\n" {
			t.Errorf("run %s: exit %d, stdout %q, stderr %s", ids[i], r.Code, r.Stdout, r.Stderr)
		}
	}
	t.Logf("%d parallel runs in %v", n, elapsed)
	out := clitest.Must(t, f.root, "audit", "verify")
	t.Log(strings.TrimSpace(out))
	want := []string{"engine.request", "policy.decision", "container.create", "container.start", "container.exit", "container.delete"}
	for _, id := range ids {
		if got := actions(f.records(t, id)); !inOrder(got, want) {
			t.Errorf("%s: audit story %v lacks %v in order", id, got, want)
		}
	}
	f.assertNothingLeft(t)
	// Every id range was released: the allocator holds none.
	b, _ := os.ReadFile(filepath.Join(f.root, "idmap", "ranges.json"))
	for _, id := range ids {
		if strings.Contains(string(b), id) {
			t.Errorf("id range of %s still allocated", id)
		}
	}
}

// TestDetachedLifecycle drives every container command on a detached container.
func TestDetachedLifecycle(t *testing.T) {
	f := newFixture(t)
	id := f.name(t, "det")
	out := clitest.Must(t, f.root, "run", "-d", "--name", id, "-e", "GREETING=hi", "busybox:1",
		"sh", "-c", `i=0; while :; do echo "$GREETING $i"; echo "err $i" >&2; i=$((i+1)); sleep 0.1; done`)
	if strings.TrimSpace(out) != id {
		t.Fatalf("run -d printed %q, want the id %s", out, id)
	}
	waitFor(t, func() bool { return strings.Contains(clitest.Must(t, f.root, "logs", id), "hi 2") })

	if ps := clitest.Must(t, f.root, "ps"); !strings.Contains(ps, id) || !strings.Contains(ps, "running") {
		t.Errorf("ps:\n%s", ps)
	}
	if q := clitest.Must(t, f.root, "ps", "-q"); strings.TrimSpace(q) != id {
		t.Errorf("ps -q: %q", q)
	}
	r := clitest.Run(t, f.root, "logs", id)
	if !strings.Contains(r.Stdout, "hi 0\n") || !strings.Contains(r.Stderr, "err 0\n") || strings.Contains(r.Stdout, "err 0") {
		t.Errorf("logs: stdout %q stderr %q", r.Stdout, r.Stderr)
	}
	if out := clitest.Must(t, f.root, "exec", id, "sh", "-c", "echo exec-$GREETING; id -u"); out != "exec-hi\n0\n" {
		t.Errorf("exec output %q", out)
	}
	if r := clitest.Run(t, f.root, "exec", id, "sh", "-c", "exit 7"); r.Code != 7 {
		t.Errorf("exec exit %d, want 7", r.Code)
	}
	var stats map[string]struct {
		MemoryUsage uint64 `json:"memoryUsage"`
		PidsCurrent uint64 `json:"pidsCurrent"`
	}
	if err := json.Unmarshal([]byte(clitest.Must(t, f.root, "stats", "--json", id)), &stats); err != nil {
		t.Fatal(err)
	}
	if s := stats[id]; s.MemoryUsage == 0 || s.PidsCurrent == 0 {
		t.Errorf("stats: %+v", s)
	}
	clitest.Must(t, f.root, "pause", id)
	if c := inspect(t, f, id); c.Status != "paused" {
		t.Errorf("after pause: %s", c.Status)
	}
	clitest.Must(t, f.root, "unpause", id)
	if c := inspect(t, f, id); c.Status != "running" {
		t.Errorf("after unpause: %s", c.Status)
	}
	if r := clitest.Run(t, f.root, "rm", id); r.Code == 0 {
		t.Errorf("rm of a running container succeeded")
	}
	clitest.Must(t, f.root, "stop", "-t", "1", id)
	waitFor(t, func() bool { c := inspect(t, f, id); return c.Exit != nil })
	c := inspect(t, f, id)
	if c.Status != "stopped" || c.Exit.Code != 137 || c.Exit.Signal != "SIGKILL" {
		t.Errorf("after stop: status %s exit %+v", c.Status, c.Exit)
	}
	if ps := clitest.Must(t, f.root, "ps"); strings.Contains(ps, id) {
		t.Errorf("ps shows a stopped container:\n%s", ps)
	}
	if ps := clitest.Must(t, f.root, "ps", "-a"); !strings.Contains(ps, "exited (137)") {
		t.Errorf("ps -a:\n%s", ps)
	}
	clitest.Must(t, f.root, "rm", id)
	f.assertNothingLeft(t)

	story := strings.Join(actions(f.records(t, id)), " ")
	for _, a := range []string{"container.create", "container.start", "policy.decision", "container.exec.start",
		"container.exec", "container.pause", "container.resume", "container.stop", "container.exit", "container.delete"} {
		if !strings.Contains(story, a) {
			t.Errorf("audit story lacks %s: %s", a, story)
		}
	}
	clitest.Must(t, f.root, "audit", "verify")
}

// TestDetachedRemoveAndKill: --rm -d removes itself when the workload exits; kill delivers a
// signal; logs -f follows to the end.
func TestDetachedRemoveAndKill(t *testing.T) {
	f := newFixture(t)
	short := f.name(t, "rmd")
	clitest.Must(t, f.root, "run", "-d", "--rm", "--name", short, "busybox:1", "true")
	waitFor(t, func() bool { return clitest.Run(t, f.root, "inspect", short).Code != 0 })

	long := f.name(t, "kill")
	clitest.Must(t, f.root, "run", "-d", "--name", long, "busybox:1", "sleep", "60")
	clitest.Must(t, f.root, "kill", long)
	waitFor(t, func() bool { return inspect(t, f, long).Exit != nil })
	if c := inspect(t, f, long); c.Exit.Code != 137 {
		t.Errorf("killed: exit %+v", c.Exit)
	}
	clitest.Must(t, f.root, "rm", long)

	// logs -f follows a running container to its end.
	follow := f.name(t, "follow")
	clitest.Must(t, f.root, "run", "-d", "--name", follow, "busybox:1", "sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.3; done")
	if out := clitest.Must(t, f.root, "logs", "-f", follow); out != "1\n2\n3\n" {
		t.Errorf("logs -f: %q", out)
	}
	clitest.Must(t, f.root, "rm", follow)
	f.assertNothingLeft(t)
}

type inspected struct {
	Status string `json:"status"`
	Exit   *struct {
		Code   int    `json:"code"`
		Signal string `json:"signal"`
	} `json:"exit"`
}

func inspect(t *testing.T, f *fixture, id string) inspected {
	t.Helper()
	var out []inspected
	if err := json.Unmarshal([]byte(clitest.Must(t, f.root, "inspect", id)), &out); err != nil || len(out) != 1 {
		t.Fatalf("inspect %s: %v", id, err)
	}
	return out[0]
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 15 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestMountsAndWorkdir: -v of a directory the operator allowlisted read-only (read-only by
// default; :rw there is refused, TestWritableBinds), --tmpfs (writable), -w into a directory the image lacks. The image's shared layers are
// never written: the mountpoints go to the container's private overlay upper, which goes with it.
func TestMountsAndWorkdir(t *testing.T) {
	f := newFixture(t)
	host := filepath.Join(f.dir, "hostdata")
	os.MkdirAll(host, 0o755)
	os.WriteFile(filepath.Join(host, "in.txt"), []byte("from host\n"), 0o644)
	pol := testenv.BindPolicy(t, host)
	id := f.name(t, "mnt")
	r := clitest.Run(t, f.root, "run", "--rm", "--policy-dir", pol, "--name", id, "-v", host+":/in", "--tmpfs", "/scratch:size=1m",
		"-w", "/work/dir", "busybox:1", "sh", "-c",
		`cat /in/in.txt; echo w > /scratch/f && cat /scratch/f; echo x > /in/new 2>/dev/null || echo in-ro; pwd; echo y > /work/dir/z 2>/dev/null || echo root-ro`)
	if want := "from host\nw\nin-ro\n/work/dir\nroot-ro\n"; r.Code != 0 || r.Stdout != want {
		t.Errorf("exit %d, stdout %q, want %q; stderr %s", r.Code, r.Stdout, want, r.Stderr)
	}
	if _, err := os.Stat(filepath.Join(host, "new")); err == nil {
		t.Error("the container wrote into a host bind")
	}
	trees, _ := filepath.Glob(filepath.Join(f.root, "layers", "sha256", "*", "rootfs"))
	if len(trees) == 0 {
		t.Error("no unpacked layer found")
	}
	for _, tree := range trees {
		for _, p := range []string{"in", "scratch", "work", "proc", "dev"} {
			if _, err := os.Stat(filepath.Join(tree, p)); err == nil {
				t.Errorf("mountpoint /%s was created in the shared image layer %s", p, tree)
			}
		}
	}
	recs := f.records(t, id)
	if raises := attr(find(recs, "container", "floor.raises"), "raises"); !strings.Contains(raises, `"mounts[/in].options"`) {
		t.Errorf("the nosuid/nodev raise of the bind is not recorded: %s", raises)
	}
	f.assertNothingLeft(t)
}

// TestHostBindsDenyByDefault (issue 8 §7): with the default policy no host path may be bound
// (/var/log, /home, /root were allowed before); the state root — here a non-default one — never,
// even when the operator's allowlist covers it; an allowlisted directory may be bound, but a
// symlink or ".." inside it that leads out of it may not.
func TestHostBindsDenyByDefault(t *testing.T) {
	f := newFixture(t)
	allowed := filepath.Join(f.dir, "allowed")
	os.MkdirAll(allowed, 0o755)
	os.Symlink("/var/log", filepath.Join(allowed, "logs"))
	denied := func(t *testing.T, code, msg string, args ...string) {
		t.Helper()
		id := f.name(t, "bind")
		r := clitest.Run(t, f.root, append([]string{"run", "--rm", "--name", id}, append(args, "busybox:1", "true")...)...)
		if r.Code != 125 || !strings.Contains(r.Stderr, code) || !strings.Contains(r.Stderr, msg) {
			t.Errorf("%v: exit %d, want 125 with %s (%q); stderr: %s", args, r.Code, code, msg, r.Stderr)
		}
		if d := find(f.records(t, id), "policy", "decision"); attr(d, "result") != "deny" || !strings.Contains(attr(d, "reason_codes"), code) {
			t.Errorf("%v: decision record %v", args, d)
		}
	}
	for _, src := range []string{"/var/log", "/home", "/root"} {
		denied(t, "MOUNT_HOST_PATH_NOT_ALLOWED", "host path "+src+" is not in tenant default's bind_sources", "-v", src+":/h")
	}
	denied(t, "MOUNT_STATE_ROOT", "overlaps the runtime's state root "+f.root, "-v", f.root+":/h")
	denied(t, "MOUNT_STATE_ROOT", "overlaps the runtime's state root", "-v", filepath.Join(f.root, "audit")+":/h")

	pol := testenv.BindPolicy(t, f.dir) // covers the state root too
	out := clitest.Must(t, f.root, "run", "--rm", "--policy-dir", pol, "-v", allowed+":/h", "busybox:1", "ls", "/h")
	if strings.TrimSpace(out) != "logs" {
		t.Errorf("allowlisted bind shows %q", out)
	}
	denied(t, "MOUNT_HOST_PATH_NOT_ALLOWED", "host path /var/log is not", "--policy-dir", pol, "-v", filepath.Join(allowed, "logs")+":/h")
	denied(t, "MOUNT_HOST_PATH_NOT_ALLOWED", "host path /root is not", "--policy-dir", pol, "-v", allowed+strings.Repeat("/..", 30)+"/root:/h")
	denied(t, "MOUNT_STATE_ROOT", "overlaps the runtime's state root", "--policy-dir", pol, "-v", f.root+":/h")
	denied(t, "MOUNT_STATE_ROOT", "overlaps the runtime's state root", "--policy-dir", pol, "-v", f.dir+":/h")
	f.assertNothingLeft(t)
}

// TestTenantLimits: a tenant's maxima (operator data in --policy-dir) constrain a run that asked
// for no limits, and deny one that asked for more.
func TestTenantLimits(t *testing.T) {
	f := newFixture(t)
	pol := filepath.Join(f.dir, "policy")
	os.MkdirAll(pol, 0o755)
	os.WriteFile(filepath.Join(pol, "data.json"), []byte(`{"bulwark": {"defaults": {"grantable_capabilities": ["CHOWN"],
		"max_memory": 8589934592, "max_pids": 4096, "writable_bind_sources": []},
		"tenants": {"default": {}, "small": {"max_memory": 134217728, "max_pids": 64}}}}`), 0o644)
	id := f.name(t, "small")
	clitest.Must(t, f.root, "run", "--rm", "--policy-dir", pol, "--tenant", "small", "--name", id, "busybox:1", "true")
	recs := f.records(t, id)
	// The defaults the tenant is not granted are dropped (one constraints record), the limits
	// applied (another).
	var raises string
	for _, r := range recs {
		if r["type"] == "policy" && r["action"] == "constraints" {
			raises += attr(r, "raises")
		}
	}
	if !strings.Contains(raises, "134217728 (policy constraint)") || !strings.Contains(raises, "64 (policy constraint)") {
		t.Errorf("constraints records: %v", raises)
	}
	if recs[0]["tenant"] != "small" {
		t.Errorf("tenant %v", recs[0]["tenant"])
	}
	r := clitest.Run(t, f.root, "run", "--rm", "--policy-dir", pol, "--tenant", "small", "--name", f.name(t, "big"), "--memory", "1g", "busybox:1", "true")
	if r.Code != 125 || !strings.Contains(r.Stderr, "MEMORY_LIMIT_ABOVE_MAX") {
		t.Errorf("explicit 1g for tenant small: exit %d %s", r.Code, r.Stderr)
	}
	// Capabilities: CHOWN is granted by this operator's data, KILL (grantable by the floor) is
	// not; the capability really is in the workload's effective set.
	out := clitest.Must(t, f.root, "run", "--rm", "--policy-dir", pol, "--cap-add", "CHOWN", "--name", f.name(t, "chown"), "busybox:1",
		"sh", "-c", "grep CapEff /proc/self/status")
	if !strings.Contains(out, "0000000000000001") {
		t.Errorf("CHOWN granted: %s", out)
	}
	r = clitest.Run(t, f.root, "run", "--rm", "--policy-dir", pol, "--cap-add", "KILL", "--name", f.name(t, "kill"), "busybox:1", "true")
	if r.Code != 125 || !strings.Contains(r.Stderr, "CAP_NOT_GRANTED") {
		t.Errorf("KILL: exit %d %s", r.Code, r.Stderr)
	}
	f.assertNothingLeft(t)
}

// TestLogRotation: a detached container's log rotates by size and keeps max-file old files;
// logs reads them in order.
func TestLogRotation(t *testing.T) {
	f := newFixture(t)
	id := f.name(t, "logs")
	clitest.Must(t, f.root, "run", "-d", "--name", id, "--log-opt", "max-size=1k", "--log-opt", "max-file=2", "busybox:1",
		"sh", "-c", `i=0; while [ $i -lt 300 ]; do echo "line $i"; i=$((i+1)); done`)
	waitFor(t, func() bool { return inspect(t, f, id).Exit != nil })
	logs := filepath.Join(f.root, "engine", id, "container.log")
	for _, p := range []string{logs, logs + ".1", logs + ".2"} {
		st, err := os.Stat(p)
		if err != nil || st.Size() > 1024 {
			t.Errorf("%s: %v", p, err)
		}
	}
	if _, err := os.Stat(logs + ".3"); err == nil {
		t.Error("more than max-file rotated files kept")
	}
	lines := strings.Split(strings.TrimSpace(clitest.Must(t, f.root, "logs", id)), "\n")
	if len(lines) < 10 || lines[len(lines)-1] != "line 299" {
		t.Fatalf("logs tail: %v", lines[max(0, len(lines)-3):])
	}
	first, _ := strconv.Atoi(strings.TrimPrefix(lines[0], "line "))
	for i, l := range lines {
		if l != "line "+strconv.Itoa(first+i) {
			t.Fatalf("line %d is %q, want line %d (gap or disorder across rotated files)", i, l, first+i)
		}
	}
	clitest.Must(t, f.root, "rm", id)
	f.assertNothingLeft(t)
}

// TestOOMKill: a workload over its memory limit is OOM-killed; the exit record says so.
func TestOOMKill(t *testing.T) {
	f := newFixture(t)
	id := f.name(t, "oom")
	r := clitest.Run(t, f.root, "run", "--rm", "--name", id, "-m", "8m", "busybox:1", "sh", "-c", `x=a; while :; do x="$x$x"; done`)
	if r.Code != 137 {
		t.Errorf("exit %d, want 137 (SIGKILL by the OOM killer); %s", r.Code, r.Stderr)
	}
	recs := f.records(t, id)
	exit := find(recs, "container", "exit")
	if find(recs, "container", "oom") == nil || attr(exit, "oom_kills") == "0" || attr(exit, "signal") != "SIGKILL" {
		t.Errorf("story %v, exit %v", actions(recs), exit)
	}
	f.assertNothingLeft(t)
}

// TestSignalProxy: signals to `bulwark run` reach the workload; the third interrupt kills it.
func TestSignalProxy(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		script  string
		signals int
		code    int
	}{
		{`trap "exit 7" TERM; echo ready; sleep 30 & wait`, 1, 7},
		{`echo ready; sleep 30`, 3, 137}, // PID 1 without a handler ignores SIGTERM
	} {
		id := f.name(t, "sig")
		cmd := exec.Command(clitest.Bin, "--root", f.root, "run", "--rm", "--name", id, "busybox:1", "sh", "-c", tc.script)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The trap is set once the workload says so.
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || line != "ready\n" {
			t.Fatalf("workload said %q, %v", line, err)
		}
		for i := 0; i < tc.signals; i++ {
			cmd.Process.Signal(syscall.SIGTERM)
			time.Sleep(100 * time.Millisecond)
		}
		err = cmd.Wait()
		if code := cmd.ProcessState.ExitCode(); code != tc.code {
			t.Errorf("%q after %d SIGTERM: exit %d (%v), want %d", tc.script, tc.signals, code, err, tc.code)
		}
	}
	f.assertNothingLeft(t)
}
