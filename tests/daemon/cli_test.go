package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"bulwark.dev/bulwark/client/op"
	"bulwark.dev/bulwark/daemon/bulwarkapi"
	"bulwark.dev/bulwark/tests/internal/clitest"
	"bulwark.dev/bulwark/tests/internal/testenv"
)

// cliResult is one bulwark command's outcome.
type cliResult struct {
	stdout, stderr string
	code           int
}

// bulwarkHost runs `bulwark ARGS` as tn (the zero tenant: root, the operator) with
// BULWARK_HOST naming the daemon: the CLI must go through bulwarkd.
func (e *daemonEnv) bulwarkHost(t *testing.T, tn tenant, args ...string) cliResult {
	t.Helper()
	cmd := e.command(tn, clitest.Bin, args...)
	cmd.Env = append(cmd.Env, op.HostEnv+"=unix://"+e.sock)
	return runCLI(t, cmd)
}

func runCLI(t *testing.T, cmd *exec.Cmd) cliResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Start()
	if err != nil {
		t.Fatalf("%v: %v", cmd.Args, err)
	}
	timer := time.AfterFunc(3*time.Minute, func() { cmd.Process.Kill() })
	defer timer.Stop()
	err = cmd.Wait()
	res := cliResult{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		res.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%v: %v", cmd.Args, err)
	}
	return res
}

// mustHost is bulwarkHost that must exit 0.
func (e *daemonEnv) mustHost(t *testing.T, tn tenant, args ...string) string {
	t.Helper()
	r := e.bulwarkHost(t, tn, args...)
	if r.code != 0 {
		t.Fatalf("bulwark %v as uid %d: exit %d: %s", args, tn.uid, r.code, r.stderr)
	}
	return r.stdout
}

// The bulwark CLI through bulwarkd, as an unprivileged tenant: run in the foreground (output
// and exit status), detached, ps, logs, exec, inspect, stop, rm, the dry run (allowed and
// denied with its reason), audit tail and verify, trust status. The other tenant sees none of
// it and is refused across the boundary.
func TestCLIThroughDaemon(t *testing.T) {
	e := startDaemon(t, nil)
	a, b := e.alice, e.bob

	r := e.bulwarkHost(t, a, "run", "--rm", "-e", "GREETING=hello", "busybox:1", "sh", "-c", "echo $GREETING from $(id -u); echo to-stderr >&2; exit 3")
	if r.code != 3 || r.stdout != "hello from 0\n" || !strings.Contains(r.stderr, "to-stderr") {
		t.Fatalf("foreground run: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	id := strings.TrimSpace(e.mustHost(t, a, "run", "-d", "--name", "web", "busybox:1", "sh", "-c", "echo alice-web; exec sleep 300"))
	if len(id) != 64 {
		t.Fatalf("run -d printed %q", id)
	}
	if out := e.mustHost(t, a, "ps"); !strings.Contains(out, id[:12]) || !strings.Contains(out, "web") {
		t.Errorf("alice's ps:\n%s", out)
	}
	waitFor(t, "alice-web in the logs", func() bool { return strings.Contains(e.mustHost(t, a, "logs", "web"), "alice-web") })
	if r := e.bulwarkHost(t, a, "exec", "web", "sh", "-c", "echo exec-out; exit 4"); r.code != 4 || r.stdout != "exec-out\n" {
		t.Errorf("exec: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	cmd := e.command(a, clitest.Bin, "exec", "-i", "web", "cat")
	cmd.Env = append(cmd.Env, op.HostEnv+"=unix://"+e.sock)
	cmd.Stdin = strings.NewReader("through stdin\n")
	if r := runCLI(t, cmd); r.code != 0 || r.stdout != "through stdin\n" {
		t.Errorf("exec -i: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	var inspected []map[string]any
	if err := json.Unmarshal([]byte(e.mustHost(t, a, "inspect", "web")), &inspected); err != nil || len(inspected) != 1 || inspected[0]["Id"] != id {
		t.Errorf("inspect web: %v %v", inspected, err)
	}

	// The dry run: decided, nothing created.
	r = e.bulwarkHost(t, a, "run", "--dry-run", "--memory", "64m", "busybox:1", "id")
	var plan map[string]any
	if r.code != 0 || !strings.Contains(r.stderr, "policy decision: ALLOW") || json.Unmarshal([]byte(r.stdout), &plan) != nil || plan["effectiveSpec"] == nil {
		t.Errorf("dry run: exit %d, stderr %q, stdout %.200q", r.code, r.stderr, r.stdout)
	}
	r = e.bulwarkHost(t, a, "run", "--dry-run", "--cap-add", "SYS_ADMIN", "busybox:1", "id")
	if r.code != 125 || !strings.Contains(r.stderr, "policy decision: DENY") || !strings.Contains(r.stderr, "CAP_FORBIDDEN") {
		t.Errorf("denied dry run: exit %d, stderr %q", r.code, r.stderr)
	}
	if out := e.mustHost(t, a, "ps", "-a", "-q"); strings.TrimSpace(out) != id {
		t.Errorf("after the dry runs alice has %q, want only %s", out, id)
	}

	// Bob sees nothing of alice's and is refused across the boundary.
	if out := e.mustHost(t, b, "ps", "-a", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("bob's ps -a shows %q", out)
	}
	for _, args := range [][]string{{"inspect", "web"}, {"inspect", id}, {"logs", id}, {"stop", id}, {"rm", "-f", id}, {"exec", id, "true"}} {
		r := e.bulwarkHost(t, b, args...)
		if r.code == 0 || strings.Contains(r.stdout, "alice-web") {
			t.Errorf("bob: bulwark %v: exit %d, stdout %q", args, r.code, r.stdout)
		}
	}
	if out := e.mustHost(t, a, "inspect", "web"); !strings.Contains(out, `"Running": true`) {
		t.Errorf("alice's web after bob's attempts:\n%s", out)
	}

	// Audit: each tenant reads its own records only; the chain verifies; an operator reads all.
	for _, tn := range []tenant{a, b} {
		out := e.mustHost(t, tn, "audit", "tail", "-n", "50")
		n := 0
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("audit tail line %q: %v", line, err)
			}
			if rec["tenant"] != tn.name {
				t.Errorf("%s's audit tail shows a record of tenant %v", tn.name, rec["tenant"])
			}
			n++
		}
		if n == 0 {
			t.Errorf("%s's audit tail is empty", tn.name)
		}
	}
	if out := e.mustHost(t, b, "audit", "verify"); !strings.Contains(out, "audit chain OK") || !strings.Contains(out, "tenant "+b.name) {
		t.Errorf("bob's audit verify: %q", out)
	}
	if out := e.mustHost(t, tenant{}, "audit", "verify"); !strings.Contains(out, "records (last seq") {
		t.Errorf("operator's audit verify: %q", out)
	}
	status, body := e.asTenant(t, b, http.MethodGet, bulwarkapi.PathAudit+"?tenant="+a.name)
	if status != http.StatusForbidden || !strings.Contains(body, "CROSS_TENANT") {
		t.Errorf("bob reading alice's audit records: %d %s", status, body)
	}

	if out := e.mustHost(t, a, "trust", "status"); !strings.Contains(out, "timestamp") || !strings.Contains(out, "busybox") {
		t.Errorf("trust status:\n%s", out)
	}
	e.mustHost(t, a, "stop", "-t", "1", "web")
	e.mustHost(t, a, "rm", "web")

	// A foreground run's signals reach its container; the third interrupt kills it (sh as PID 1
	// ignores SIGTERM).
	fg := e.command(a, clitest.Bin, "run", "--rm", "--name", "fg", "busybox:1", "sleep", "300")
	fg.Env = append(fg.Env, op.HostEnv+"=unix://"+e.sock)
	var fgErr bytes.Buffer
	fg.Stderr = &fgErr
	if err := fg.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() {
		fg.Wait()
		done <- fg.ProcessState.ExitCode()
	}()
	waitFor(t, "the foreground container running", func() bool { return strings.Contains(e.mustHost(t, a, "ps"), "fg") })
	// SIGTERMs sent at once may reach the CLI as one (a pending signal is not queued twice):
	// they are sent until it ends, which only the third one it gets can do.
	code, sent := -1, 0
	for code < 0 {
		if sent++; sent > 600 {
			fg.Process.Kill()
			t.Fatalf("%d SIGTERMs did not end the foreground run", sent-1)
		}
		fg.Process.Signal(syscall.SIGTERM)
		select {
		case code = <-done:
		case <-time.After(100 * time.Millisecond):
		}
	}
	if code != 137 || sent < 3 {
		t.Errorf("foreground run after %d SIGTERMs: exit %d, stderr %q", sent, code, fgErr.String())
	}
	waitFor(t, "fg removed", func() bool { return strings.TrimSpace(e.mustHost(t, a, "ps", "-a", "-q")) == "" })
}

// asTenant sends one request as tn through a proxy running with tn's credentials.
func (e *daemonEnv) asTenant(t *testing.T, tn tenant, method, path string) (int, string) {
	t.Helper()
	sock := e.proxyAs(t, tn)
	c := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}, Timeout: 2 * time.Minute}
	req, err := http.NewRequest(method, "http://bulwarkd"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for i := 0; !ok(); i++ {
		if i == 300 {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The trust status a tenant gets: the top-level roles and its own delegated role with the tags
// it signed; another tenant's role and tags are the operator's to see.
func TestTrustStatusPerTenant(t *testing.T) {
	e := startDaemon(t, nil)
	a, b := e.alice, e.bob
	for _, tn := range []tenant{a, b} {
		key := filepath.Join(e.dir, tn.name+".key")
		clitest.Must(t, e.root, "trust", "keygen", key)
		clitest.Must(t, e.root, "trust", "delegate", tn.name, "--key", key+".pub", "--paths", tn.name+"/*")
		clitest.Must(t, e.root, "image", "import", filepath.Join(e.dir, "busybox.tar"), "--tag", tn.name+"/app:1")
		clitest.Must(t, e.root, "trust", "sign", tn.name+"/app:1", "--role", tn.name, "--key", key)
	}
	status, body := e.asTenant(t, a, http.MethodGet, bulwarkapi.PathTrust)
	var got bulwarkapi.TrustResponse
	if status != http.StatusOK || json.Unmarshal([]byte(body), &got) != nil {
		t.Fatalf("alice's trust status: %d %s", status, body)
	}
	roles := map[string]bulwarkapi.Role{}
	for _, r := range got.Roles {
		roles[r.Role] = r
	}
	for _, want := range []string{"root", "targets", "snapshot", "timestamp", a.name} {
		if roles[want].Version == 0 || roles[want].Expires.IsZero() {
			t.Errorf("alice's view: role %s: %+v", want, roles[want])
		}
	}
	if _, ok := roles[b.name]; ok {
		t.Errorf("alice's view shows bob's role")
	}
	repos := map[string]string{}
	for _, rp := range got.Repositories {
		for _, tag := range rp.Tags {
			repos[rp.Name+":"+tag.Tag] = tag.Role
		}
	}
	if repos["busybox:1"] != "targets" || repos[a.name+"/app:1"] != a.name || repos[b.name+"/app:1"] != "" {
		t.Errorf("alice's signed tags: %v", repos)
	}
	status, body = e.raw(t, http.MethodGet, bulwarkapi.PathTrust, nil)
	if status != http.StatusOK || !strings.Contains(body, b.name+"/app") || !strings.Contains(body, a.name+"/app") {
		t.Errorf("operator's trust status: %d %s", status, body)
	}
}

// The daemonless CLI and bulwarkd on one state root at once: containers of the same names in
// both (the CLI's tenant and two of the daemon's), foreground and detached, all run and are
// removed, and the one audit chain both append to verifies afterwards.
func TestCLIAndDaemonShareStateRoot(t *testing.T) {
	e := startDaemon(t, nil)
	a, b := e.alice, e.bob
	const rounds = 3
	var wg sync.WaitGroup
	errs := make(chan string, 10*rounds)
	check := func(who string, r cliResult, want string) {
		if r.code != 0 || strings.TrimSpace(r.stdout) != want {
			errs <- fmt.Sprintf("%s: exit %d, stdout %q, stderr %q", who, r.code, r.stdout, r.stderr)
		}
	}
	for i := range rounds {
		name := fmt.Sprintf("web-%d", i)
		wg.Add(3)
		go func() {
			defer wg.Done()
			r := runCLI(t, exec.Command(clitest.Bin, "--root", e.root, "run", "--rm", "--name", name, "busybox:1", "echo", "local-"+name))
			check("daemonless "+name, r, "local-"+name)
		}()
		go func() {
			defer wg.Done()
			check("alice "+name, e.bulwarkHost(t, a, "run", "--rm", "--name", name, "busybox:1", "echo", "alice-"+name), "alice-"+name)
		}()
		go func() {
			defer wg.Done()
			out, err := e.docker(t, b, "run", "--rm", "--name", name, "busybox:1", "echo", "bob-"+name)
			if err != nil || strings.TrimSpace(out) != "bob-"+name {
				errs <- fmt.Sprintf("bob %s: %q %v", name, out, err)
			}
		}()
	}
	// Detached containers named keep in both modes at once.
	wg.Add(2)
	go func() {
		defer wg.Done()
		r := runCLI(t, exec.Command(clitest.Bin, "--root", e.root, "run", "-d", "--name", "keep", "busybox:1", "sleep", "300"))
		check("daemonless keep", r, "keep")
	}()
	var aliceKeep string
	go func() {
		defer wg.Done()
		r := e.bulwarkHost(t, a, "run", "-d", "--name", "keep", "busybox:1", "sleep", "300")
		if r.code != 0 {
			errs <- fmt.Sprintf("alice keep: exit %d: %s", r.code, r.stderr)
		}
		aliceKeep = strings.TrimSpace(r.stdout)
	}()
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
	if t.Failed() {
		t.FailNow()
	}
	if out := clitest.Must(t, e.root, "ps", "-q"); !strings.Contains(out, "keep") {
		t.Errorf("daemonless ps: %q", out)
	}
	if out := e.mustHost(t, a, "ps", "-q"); strings.TrimSpace(out) != aliceKeep {
		t.Errorf("alice's ps: %q, want %s", out, aliceKeep)
	}
	clitest.Must(t, e.root, "rm", "-f", "keep")
	e.mustHost(t, a, "rm", "-f", "keep")

	if out := clitest.Must(t, e.root, "audit", "verify"); !strings.Contains(out, "audit chain OK") {
		t.Errorf("daemonless audit verify: %s", out)
	}
	if out := e.mustHost(t, tenant{}, "audit", "verify"); !strings.Contains(out, "audit chain OK") {
		t.Errorf("audit verify through bulwarkd: %s", out)
	}
	// Every run of both modes is on the chain.
	for _, tn := range []string{"default", a.name, b.name} {
		if n := len(e.tenantRecords(t, tn, "container", "create")); n < rounds {
			t.Errorf("tenant %s: %d container.create records, want at least %d", tn, n, rounds)
		}
	}
}

// tenantRecords are tenant's audit records of type and action.
func (e *daemonEnv) tenantRecords(t *testing.T, tn, typ, action string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, r := range e.auditRecords(t, typ, action) {
		if r["tenant"] == tn {
			out = append(out, r)
		}
	}
	return out
}

// With --host, a command that cannot go through the daemon, or a flag it would not carry, is
// refused before anything is done: never run locally, never dropped.
func TestCLIHostRefusesWhatCannotGoThroughTheDaemon(t *testing.T) {
	root := testenv.OpenDir(t, 0o700)
	for _, args := range [][]string{
		{"image", "ls"}, {"trust", "init"}, {"audit", "checkpoint"}, {"network", "ls"},
		{"run", "--policy-dir", root, "busybox:1", "true"}, {"run", "-v", "/etc:/x", "busybox:1", "true"},
		{"run", "--tenant", "other", "busybox:1", "true"}, {"run", "-t", "busybox:1", "true"},
		{"ps", "--tenant", "other"}, {"audit", "verify", "--anchor", "/x"}, {"exec", "--policy-dir", root, "c", "true"},
	} {
		cmd := exec.Command(clitest.Bin, append([]string{"--root", root + "/state"}, args...)...)
		cmd.Env = []string{op.HostEnv + "=unix:///nonexistent/bulwark.sock", "PATH=/usr/bin:/bin"}
		r := runCLI(t, cmd)
		if r.code == 0 || !strings.Contains(r.stderr, "cannot go through bulwarkd") {
			t.Errorf("bulwark %v with %s: exit %d, stderr %q", args, op.HostEnv, r.code, r.stderr)
		}
	}
	// --root given explicitly is refused too; from the environment it is only a default.
	cmd := exec.Command(clitest.Bin, "--host", "unix:///nonexistent/bulwark.sock", "--root", root, "ps")
	if r := runCLI(t, cmd); !strings.Contains(r.stderr, "--root cannot go through bulwarkd") {
		t.Errorf("--root with --host: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runCLI(t, exec.Command(clitest.Bin, "--host", "tcp://127.0.0.1:1", "ps")); r.code == 0 || !strings.Contains(r.stderr, "unix socket only") {
		t.Errorf("tcp host: exit %d, stderr %q", r.code, r.stderr)
	}
	if ents, _ := filepath.Glob(filepath.Join(root, "*")); len(ents) != 0 {
		t.Errorf("the refused commands wrote %v", ents)
	}
}

// Every run flag the CLI lets through --host reaches the daemon's create (or decide) request:
// none is accepted and dropped. A stand-in daemon records the requests and refuses them.
func TestCLIHostRunFlagsReachTheDaemon(t *testing.T) {
	dir := testenv.OpenDir(t, 0o700)
	sock := filepath.Join(dir, "fake.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var last string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		last = r.Method + " " + r.URL.String() + " " + string(b)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte(`{"message":"refused by the stand-in"}`))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	request := func(flags ...string) string {
		t.Helper()
		args := append(append([]string{"--host", "unix://" + sock, "run"}, flags...), "busybox:1", "true")
		r := runCLI(t, exec.Command(clitest.Bin, args...))
		if r.code != 125 || !strings.Contains(r.stderr, "refused by the stand-in") {
			t.Fatalf("bulwark %v: exit %d, stderr %q", args, r.code, r.stderr)
		}
		mu.Lock()
		defer mu.Unlock()
		return last
	}
	values := map[string]string{"name": "x", "env": "A=B", "workdir": "/w", "user": "1", "hostname": "h", "entrypoint": "/e",
		"memory": "64m", "pids-limit": "5", "cpus": "0.5", "cap-add": "CHOWN", "cap-drop": "KILL", "tmpfs": "/t"}
	base := request()
	for _, f := range op.RunFlags {
		flag := []string{"--" + f}
		if v, ok := values[f]; ok {
			flag = append(flag, v)
		}
		if got := request(flag...); got == base {
			t.Errorf("--%s did not change the request the daemon got: %s", f, got)
		}
	}
	// A run larger than one environment string may be (128 KiB) reaches it whole too: 20 values
	// of 10 KiB (one argument may not be larger either).
	var big []string
	for i := range 20 {
		big = append(big, "--env", fmt.Sprintf("BIG%d=%s", i, strings.Repeat("x", 10<<10)))
	}
	if got := request(big...); !strings.Contains(got, big[len(big)-1]) {
		t.Errorf("a run with 200 KiB of --env did not reach the daemon whole (%d bytes)", len(got))
	}
}
