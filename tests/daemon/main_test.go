// Package daemon tests bulwarkd end to end with clients nobody here wrote: the stock docker
// CLI and the Python docker SDK, on a temp socket and a temp state root with a busybox image
// imported and signed; tenants are other uids, connecting from processes that run with their
// credentials (SO_PEERCRED is all the daemon believes).
package daemon

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"bulwark.dev/bulwark/tests/internal/clitest"
	"bulwark.dev/bulwark/tests/internal/testenv"
)

// bulwarkd is the daemon under test: $BULWARK_BIN/bulwarkd, or built once here.
var bulwarkd string

func TestMain(m *testing.M) {
	if spec := os.Getenv(proxyEnv); spec != "" {
		// Re-executed as a tenant's proxy (proxyAs).
		listen, target, _ := strings.Cut(spec, "=")
		if err := serveProxy(listen, target); err != nil {
			fmt.Fprintln(os.Stderr, "proxy:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	cleanup, err := testenv.PrivateRunRoots()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cleanup()
	if d := os.Getenv("BULWARK_BIN"); d != "" {
		clitest.Bin, bulwarkd = filepath.Join(d, "bulwark"), filepath.Join(d, "bulwarkd")
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "bulwarkd-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	clitest.Bin, bulwarkd = filepath.Join(dir, "bulwark"), filepath.Join(dir, "bulwarkd")
	// bulwark executes bulwark-policy, bulwark-seccomp and bulwark-admin from beside itself
	// (bulwarkd bulwark-seccomp).
	for bin, pkg := range map[string]string{clitest.Bin: "./cmd/bulwark", bulwarkd: "./cmd/bulwarkd",
		filepath.Join(dir, "bulwark-policy"): "./cmd/bulwark-policy", filepath.Join(dir, "bulwark-admin"): "./cmd/bulwark-admin",
		filepath.Join(dir, "bulwark-seccomp"): "./cmd/bulwark-seccomp"} {
		cmd := exec.Command("go", "build", "-o", bin, pkg)
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", pkg, err, out)
			return 1
		}
	}
	return m.Run()
}

// tenant is a uid the daemon maps to a tenant, and what its clients need.
type tenant struct {
	name     string
	uid, gid int
	home     string
}

// daemonEnv is one bulwarkd on a temp socket and state root, with two tenants.
type daemonEnv struct {
	dir, root, sock string
	cfgPath         string
	group           int // the socket's group: the tenants' processes have it
	alice, bob      tenant
	stranger        tenant // a uid in no tenant
	netns           string // the network namespace the daemon runs in (/run/netns/NAME); "": the test's
	cmd             *exec.Cmd
	log             *bytes.Buffer
	leaks           *testenv.Leaks
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// startDaemon imports and signs busybox:1 on a fresh state root, writes a configuration (extra
// merged into it) and starts bulwarkd; it is stopped, and its containers removed, at cleanup.
func startDaemon(t *testing.T, extra map[string]any) *daemonEnv {
	t.Helper()
	return startDaemonWith(t, daemonOptions{config: extra})
}

// daemonOptions are what a test asks of its daemon beyond the defaults.
type daemonOptions struct {
	config map[string]any // merged into the configuration
	// netns is a network namespace (/run/netns/NAME) the daemon, and so the state root's
	// supervisor and networks' resolvers it starts, run in.
	netns string
	// tenantData gives alice's and bob's run-policy data (default: none).
	tenantData func(e *daemonEnv) (alice, bob map[string]any)
}

func startDaemonWith(t *testing.T, opts daemonOptions) *daemonEnv {
	t.Helper()
	testenv.RequireRoot(t)
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("the docker CLI is not installed")
	}
	dir := testenv.OpenDir(t, 0o711)
	e := &daemonEnv{dir: dir, root: filepath.Join(dir, "state"), sock: filepath.Join(dir, "bulwark.sock"), log: &bytes.Buffer{}}
	e.leaks = testenv.NewLeaks(t, e.root, dir)
	// Unique tenant names and ids per test: cgroups and id ranges are host-wide.
	suffix := randHex(3)
	var n [2]byte
	rand.Read(n[:])
	base := 42000 + (int(n[0])<<8|int(n[1]))%2000*10
	e.group = base + 9
	e.alice = tenant{name: "alice-" + suffix, uid: base + 1, gid: base + 1}
	e.bob = tenant{name: "bob-" + suffix, uid: base + 2, gid: base + 2}
	e.stranger = tenant{uid: base + 3, gid: base + 3}
	for _, tn := range []*tenant{&e.alice, &e.bob, &e.stranger} {
		tn.home = filepath.Join(dir, fmt.Sprintf("home-%d", tn.uid))
		if err := os.Mkdir(tn.home, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(tn.home, tn.uid, tn.gid); err != nil {
			t.Fatal(err)
		}
	}
	clitest.Must(t, e.root, "image", "import", testenv.BusyboxTar(t, filepath.Join(dir, "busybox.tar"),
		[]string{"sh", "echo", "cat", "id", "sleep", "true", "env", "pwd"}, nil), "--tag", "busybox:1")
	clitest.Must(t, e.root, "trust", "init")
	clitest.Must(t, e.root, "trust", "sign", "busybox:1")
	// The run policy knows the tenants (its default data, with them added).
	polDir := filepath.Join(dir, "policy")
	if err := os.Mkdir(polDir, 0o700); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("../../policy/default/data.json")
	if err != nil {
		t.Fatal(err)
	}
	var data map[string]map[string]map[string]any
	if err := json.Unmarshal(b, &data); err != nil {
		t.Fatal(err)
	}
	data["bulwark"]["tenants"][e.alice.name] = map[string]any{}
	data["bulwark"]["tenants"][e.bob.name] = map[string]any{}
	if opts.tenantData != nil {
		data["bulwark"]["tenants"][e.alice.name], data["bulwark"]["tenants"][e.bob.name] = opts.tenantData(e)
	}
	testenv.WriteJSON(t, filepath.Join(polDir, "data.json"), data)
	cfg := map[string]any{
		"socket": e.sock, "socket_group": fmt.Sprint(e.group), "state_root": e.root, "policy_dir": polDir,
		"tenants": map[string]any{
			e.alice.name: map[string]any{"uids": []int{e.alice.uid}},
			e.bob.name:   map[string]any{"uids": []int{e.bob.uid}},
		},
		"log_level": "debug",
	}
	for k, v := range opts.config {
		cfg[k] = v
	}
	e.netns = opts.netns
	e.cfgPath = filepath.Join(dir, "bulwarkd.json")
	testenv.WriteJSON(t, e.cfgPath, cfg)
	e.start(t)
	t.Cleanup(func() { e.stop(t) })
	return e
}

// start starts bulwarkd on the environment's configuration and waits for its socket.
func (e *daemonEnv) start(t *testing.T) {
	t.Helper()
	e.cmd = exec.Command(bulwarkd, "--config", e.cfgPath)
	if e.netns != "" {
		// nsenter execs the daemon: e.cmd's process is the daemon itself.
		e.cmd = exec.Command("nsenter", "--net="+e.netns, bulwarkd, "--config", e.cfgPath)
	}
	e.cmd.Stdout, e.cmd.Stderr = e.log, e.log
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if c, err := net.Dial("unix", e.sock); err == nil {
			c.Close()
			break
		}
		if i == 600 {
			t.Fatalf("bulwarkd did not listen on %s\n%s", e.sock, e.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill SIGKILLs the daemon (its containers run on under their monitors).
func (e *daemonEnv) kill(t *testing.T) {
	t.Helper()
	e.cmd.Process.Kill()
	e.cmd.Wait()
}

// stop removes every container (as the operator), stops the daemon gracefully and checks that
// nothing is left.
func (e *daemonEnv) stop(t *testing.T) {
	if e.cmd.Process == nil || e.cmd.ProcessState != nil {
		return
	}
	for _, tn := range []tenant{e.alice, e.bob} {
		out, _ := e.docker(t, tn, "ps", "-aq", "--no-trunc")
		for _, id := range strings.Fields(out) {
			e.docker(t, tenant{}, "rm", "-f", id)
		}
	}
	e.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- e.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("bulwarkd exited with %v\n%s", err, e.log)
		}
	case <-time.After(2 * time.Minute):
		e.cmd.Process.Kill()
		<-done
		t.Errorf("bulwarkd did not shut down on SIGTERM\n%s", e.log)
	}
	if _, err := os.Stat(e.sock); err == nil {
		t.Errorf("socket %s left behind", e.sock)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.root, "engine")); len(ents) != 0 {
		t.Errorf("engine/ still holds %d containers", len(ents))
	}
	e.leaks.AssertNone(t)
	if t.Failed() {
		t.Logf("bulwarkd log:\n%s", e.log)
	}
}

// command runs name as tenant tn (the zero tenant: root, the operator) against the daemon.
func (e *daemonEnv) command(tn tenant, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = []string{"DOCKER_HOST=unix://" + e.sock, "PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + e.dir}
	if tn.uid != 0 {
		cmd.Env = []string{"DOCKER_HOST=unix://" + e.sock, "PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + tn.home}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{
			Uid: uint32(tn.uid), Gid: uint32(tn.gid), Groups: []uint32{uint32(e.group)}}}
		cmd.Dir = tn.home
	}
	return cmd
}

// docker runs the docker CLI as tn; it returns stdout and, on failure, an error with stderr.
func (e *daemonEnv) docker(t *testing.T, tn tenant, args ...string) (string, error) {
	t.Helper()
	cmd := e.command(tn, "docker", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	go func() {
		<-ctx.Done()
		if cmd.Process != nil && ctx.Err() == context.DeadlineExceeded {
			cmd.Process.Kill()
		}
	}()
	err := cmd.Run()
	if err != nil {
		return stdout.String(), &cliError{err: err, stderr: stderr.String()}
	}
	return stdout.String(), nil
}

type cliError struct {
	err    error
	stderr string
}

func (c *cliError) Error() string { return c.err.Error() + ": " + c.stderr }

func (c *cliError) code() int {
	if ee, ok := c.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// mustDocker is docker that must succeed.
func (e *daemonEnv) mustDocker(t *testing.T, tn tenant, args ...string) string {
	t.Helper()
	out, err := e.docker(t, tn, args...)
	if err != nil {
		t.Fatalf("docker %v as uid %d: %v", args, tn.uid, err)
	}
	return out
}

// raw sends one request on a fresh connection as root and returns the status and body.
func (e *daemonEnv) raw(t *testing.T, method, path string, body io.Reader) (int, string) {
	t.Helper()
	return rawOn(t, e.sock, method, path, body)
}

// rawOn sends one request on a fresh connection to sock (the daemon's, or a tenant's proxy to
// it) and returns the status and body.
func rawOn(t *testing.T, sock, method, path string, body io.Reader) (int, string) {
	t.Helper()
	c := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}, Timeout: 2 * time.Minute}
	req, err := http.NewRequest(method, "http://bulwarkd"+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// auditRecords returns the state root's audit records of type and action.
func (e *daemonEnv) auditRecords(t *testing.T, typ, action string) []map[string]any {
	t.Helper()
	out := clitest.Must(t, e.root, "audit", "query")
	var recs []map[string]any
	dec := json.NewDecoder(strings.NewReader(out))
	for {
		var r map[string]any
		if err := dec.Decode(&r); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("audit query: %v", err)
		}
		if r["type"] == typ && r["action"] == action {
			recs = append(recs, r)
		}
	}
	return recs
}

// proxyEnv makes the test binary a proxy: LISTEN=TARGET (unix socket paths).
const proxyEnv = "BULWARKD_TEST_PROXY"

// proxyAs starts a proxy to the daemon running with tn's credentials and returns its socket: a
// client run as root connects there and the daemon sees tn (the peer of its connection).
func (e *daemonEnv) proxyAs(t *testing.T, tn tenant) string {
	t.Helper()
	sock := filepath.Join(tn.home, "proxy.sock")
	cmd := e.command(tn, testenv.ExecutableCopy(t, os.Args[0]))
	cmd.Env = append(cmd.Env, proxyEnv+"="+sock+"="+e.sock)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("proxy: %s", out.String())
		}
	})
	for i := 0; ; i++ {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return sock
		}
		if i == 600 {
			t.Fatalf("proxy did not listen: %s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func serveProxy(listen, target string) error {
	ln, err := net.Listen("unix", listen)
	if err != nil {
		return err
	}
	os.Chmod(listen, 0o777) // root's client connects; the home directory keeps others out
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			d, err := net.Dial("unix", target)
			if err != nil {
				return
			}
			defer d.Close()
			done := make(chan struct{}, 2)
			pipe := func(dst, src net.Conn) {
				io.Copy(dst, src)
				dst.(*net.UnixConn).CloseWrite()
				done <- struct{}{}
			}
			go pipe(d, c)
			go pipe(c, d)
			<-done
			<-done
		}()
	}
}
