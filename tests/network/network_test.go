// Package network tests containers' networking end to end through the bulwark binary: loopback
// inside a container's own network namespace, what the floor says about networking in a dry run
// and the audit trail. Tests that need a "host" network build it in a network namespace they
// create and delete; packets go only to 127.0.0.0/8 or to addresses inside such namespaces.
package network

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"bulwark.dev/bulwark/tests/internal/clitest"
	"bulwark.dev/bulwark/tests/internal/testenv"
)

func TestMain(m *testing.M) { clitest.Main(m) }

// fixture is a fresh state root with busybox:1 (a shell, httpd, wget and nc) imported and signed.
type fixture struct {
	root  string
	leaks *testenv.Leaks
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	testenv.RequireRoot(t)
	dir := t.TempDir()
	f := &fixture{root: filepath.Join(dir, "state")}
	f.leaks = testenv.NewLeaks(t, f.root, dir)
	clitest.Must(t, f.root, "image", "import", busyboxTar(t, dir), "--tag", "busybox:1")
	clitest.Must(t, f.root, "trust", "init")
	clitest.Must(t, f.root, "trust", "sign", "busybox:1")
	return f
}

// busyboxTar writes a rootfs tar of the static busybox with the applets the tests use.
func busyboxTar(t testing.TB, dir string) string {
	return testenv.BusyboxTar(t, filepath.Join(dir, "busybox.tar"),
		[]string{"sh", "echo", "cat", "mkdir", "sleep", "true", "httpd", "wget", "nc", "ip", "timeout", "nslookup"}, nil)
}

// TestLoopbackServeAndConnect: a server in the container binds 127.0.0.1:8080 and a client in
// the same container fetches from it. On the old floor Landlock refused both with a bare EACCES.
func TestLoopbackServeAndConnect(t *testing.T) {
	f := newFixture(t)
	name := f.leaks.Track("loopback")
	out := clitest.Must(t, f.root, "run", "--rm", "--name", name, "busybox:1", "sh", "-c",
		`mkdir -p /tmp/www && echo served > /tmp/www/index.html && httpd -p 127.0.0.1:8080 -h /tmp/www && wget -qO- http://127.0.0.1:8080/`)
	if out != "served\n" {
		t.Errorf("fetched %q over loopback, want %q", out, "served\n")
	}
	// The same as a non-root user, on a port a non-root server would pick. The server answers
	// every connection (-ll -e), and the client asks until it has the answer: a one-shot server
	// answered a first connection that raced its client's end of input with nothing.
	out = clitest.Must(t, f.root, "run", "--rm", "-u", "nobody", "busybox:1", "sh", "-c",
		`(nc -ll -p 5432 -e echo hi &); i=0; while [ $i -lt 30 ]; do out=$(nc 127.0.0.1 5432 </dev/null 2>/dev/null); [ "$out" = hi ] && echo "$out" && exit; i=$((i+1)); sleep 0.1; done; exit 1`)
	if out != "hi\n" {
		t.Errorf("nc over loopback as nobody: %q, want %q", out, "hi\n")
	}
}

// TestNetworkFloorExplained: a dry run shows what the floor does to networking (a private
// namespace, no TCP port rule, each socket kind it refuses with the errno and why, MPTCP among
// them), and the audit trail of a run records it, so a refused socket call is never untraceable.
func TestNetworkFloorExplained(t *testing.T) {
	f := newFixture(t)
	r := clitest.Run(t, f.root, "run", "--dry-run", "busybox:1", "true")
	if r.Code != 0 {
		t.Fatalf("dry run: exit %d: %s", r.Code, r.Stderr)
	}
	var plan struct {
		Network struct {
			Namespace      string
			TCP            string
			RefusedSockets []struct{ Errno, Reason string }
		} `json:"network"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &plan); err != nil {
		t.Fatal(err)
	}
	n := plan.Network
	mptcp := false
	for _, s := range n.RefusedSockets {
		mptcp = mptcp || s.Errno == "EPERM" && strings.Contains(s.Reason, "MPTCP")
	}
	if n.Namespace != "private" || !strings.Contains(n.TCP, "no port rule") || !mptcp {
		t.Errorf("dry run's network: %+v", n)
	}
	if !strings.Contains(r.Stderr, "socket refused (EPERM)") {
		t.Errorf("dry run's summary does not name the refused sockets:\n%s", r.Stderr)
	}
	name := f.leaks.Track("audited")
	clitest.Must(t, f.root, "run", "--rm", "--name", name, "busybox:1", "true")
	recs := clitest.Must(t, f.root, "audit", "query", "--container", name)
	if !strings.Contains(recs, `"floor.network"`) && !strings.Contains(recs, `"action":"floor.network"`) || !strings.Contains(recs, "MPTCP") {
		t.Errorf("the audit trail has no floor.network record naming MPTCP:\n%s", recs)
	}
}
