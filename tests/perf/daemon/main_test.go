// Package daemon benchmarks bulwarkd (issue 10): its load with 200 concurrent clients of 10
// tenants (throughput, latency percentiles, the daemon's memory and what it holds afterwards),
// and what the decisions of one `docker run --rm busybox:1 true` through it cost against the
// whole run (the target: well under 2%). `make perf` runs it with the binaries `make build`
// left in $BULWARK_BIN; it needs root.
package daemon

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/tests/internal/clitest"
	"bulwark.dev/bulwark/tests/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// tenant is a uid the daemon maps to a tenant.
type tenant struct {
	name     string
	uid, gid int
	home     string
}

// env is one bulwarkd on a temp socket and state root with its tenants and busybox:1 signed.
type env struct {
	dir, root, sock string
	group           int
	tenants         []tenant
	cmd             *exec.Cmd
	logPath         string
}

// startDaemon starts bulwarkd with n tenants (logLevel: its log level) and stops it at cleanup.
func startDaemon(b *testing.B, n int, logLevel string) *env {
	b.Helper()
	testenv.RequireRoot(b)
	bin := os.Getenv(testenv.BinEnv)
	if bin == "" {
		b.Skip("BULWARK_BIN is not set (make perf sets it)")
	}
	clitest.Bin = filepath.Join(bin, "bulwark")
	dir := testenv.OpenDir(b, 0o711)
	e := &env{dir: dir, root: filepath.Join(dir, "state"), sock: filepath.Join(dir, "bulwark.sock"), logPath: filepath.Join(dir, "bulwarkd.log")}
	var r [3]byte
	rand.Read(r[:])
	base := 52000 + (int(r[0])<<8|int(r[1]))%1000*20
	e.group = base + 19
	suffix := fmt.Sprintf("%02x", r[2])
	tenants := map[string]any{}
	runTenants := map[string]any{"default": map[string]any{}}
	for i := range n {
		tn := tenant{name: fmt.Sprintf("perf%d-%s", i, suffix), uid: base + i, gid: base + i}
		tn.home = filepath.Join(dir, "home-"+strconv.Itoa(tn.uid))
		if err := os.Mkdir(tn.home, 0o700); err != nil {
			b.Fatal(err)
		}
		if err := os.Chown(tn.home, tn.uid, tn.gid); err != nil {
			b.Fatal(err)
		}
		e.tenants = append(e.tenants, tn)
		tenants[tn.name] = map[string]any{"uids": []int{tn.uid}}
		runTenants[tn.name] = map[string]any{}
	}
	clitest.Must(b, e.root, "image", "import", testenv.BusyboxTar(b, filepath.Join(dir, "busybox.tar"),
		[]string{"sh", "true", "sleep"}, nil), "--tag", "busybox:1")
	clitest.Must(b, e.root, "trust", "init")
	clitest.Must(b, e.root, "trust", "sign", "busybox:1")
	polDir := filepath.Join(dir, "policy")
	os.Mkdir(polDir, 0o700)
	raw, err := os.ReadFile("../../../policy/default/data.json")
	if err != nil {
		b.Fatal(err)
	}
	var data map[string]map[string]any
	if err := json.Unmarshal(raw, &data); err != nil {
		b.Fatal(err)
	}
	data["bulwark"]["tenants"] = runTenants
	testenv.WriteJSON(b, filepath.Join(polDir, "data.json"), data)
	cfgPath := filepath.Join(dir, "bulwarkd.json")
	testenv.WriteJSON(b, cfgPath, map[string]any{
		"socket": e.sock, "socket_group": strconv.Itoa(e.group), "state_root": e.root, "policy_dir": polDir,
		"tenants": tenants, "log_level": logLevel,
	})
	logf, err := os.Create(e.logPath)
	if err != nil {
		b.Fatal(err)
	}
	e.cmd = exec.Command(filepath.Join(bin, "bulwarkd"), "--config", cfgPath)
	e.cmd.Stdout, e.cmd.Stderr = logf, logf
	if err := e.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		e.cmd.Process.Signal(unix.SIGTERM)
		e.cmd.Wait()
		logf.Close()
		// Whatever a failed benchmark left, as each tenant's containers.
		for _, tn := range e.tenants {
			for _, id := range strings.Fields(clitest.Run(b, e.root, "ps", "-a", "-q", "--tenant", tn.name).Stdout) {
				clitest.Run(b, e.root, "rm", "-f", "--tenant", tn.name, id)
			}
		}
	})
	for i := 0; ; i++ {
		if c, err := net.Dial("unix", e.sock); err == nil {
			c.Close()
			break
		}
		if i == 600 {
			b.Fatalf("bulwarkd did not listen on %s", e.sock)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return e
}

// dialAs connects to sock as tn: the connecting thread alone takes tn's effective uid and gid and
// the socket's group (raw syscalls: Go's setuid would change every thread), and SO_PEERCRED
// records the connecting thread's credentials, so the daemon sees tn as it would see tn's own
// process. The thread is never unlocked: it ends with its goroutine, its ids changed.
func dialAs(sock string, tn tenant, group int) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		groups := []uint32{uint32(group)}
		if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, 1, uintptr(unsafe.Pointer(&groups[0])), 0); e != 0 {
			ch <- result{err: fmt.Errorf("setgroups: %w", e)}
			return
		}
		keep := ^uintptr(0) // -1: unchanged
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, keep, uintptr(tn.gid), keep); e != 0 {
			ch <- result{err: fmt.Errorf("setresgid: %w", e)}
			return
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, keep, uintptr(tn.uid), keep); e != 0 {
			ch <- result{err: fmt.Errorf("setresuid: %w", e)}
			return
		}
		c, err := net.Dial("unix", sock)
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// client is an HTTP client whose connections are tn's.
func (e *env) client(tn tenant) *http.Client {
	return &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{
		MaxIdleConnsPerHost: 4,
		DialContext: func(context.Context, string, string) (net.Conn, error) {
			return dialAs(e.sock, tn, e.group)
		}}}
}

// do sends one request and returns its status and body; a transport error is status 0.
func do(c *http.Client, method, path, body string) (int, []byte, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://bulwarkd"+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// procStatus reads fields of /proc/pid/status ("VmRSS", "VmHWM", "Threads"), in kB for sizes.
func procStatus(pid int, keys ...string) map[string]int64 {
	out := map[string]int64{}
	raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		for _, want := range keys {
			if k == want {
				f := strings.Fields(v)
				if len(f) > 0 {
					out[k], _ = strconv.ParseInt(f[0], 10, 64)
				}
			}
		}
	}
	return out
}

func openFDs(pid int) int {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents)
}

// percentile is the p-th percentile (0-100) of ds, in ms.
func percentile(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p / 100 * float64(len(s)-1))
	return float64(s[i].Microseconds()) / 1000
}
