// Package network tests containers' networking end to end through the bulwark binary: loopback
// inside a container's own network namespace, what the floor says about networking in a dry run
// and the audit trail. Tests that need a "host" network build it in a network namespace they
// create and delete; packets go only to 127.0.0.0/8 or to addresses inside such namespaces.
package network

import (
	"archive/tar"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bulwark.dev/bulwark/tests/internal/clitest"
	"bulwark.dev/bulwark/tests/internal/testenv"
)

func TestMain(m *testing.M) { clitest.Main(m) }

func must(t testing.TB, root string, args ...string) string {
	t.Helper()
	r := clitest.Run(t, root, args...)
	if r.Code != 0 {
		t.Fatalf("bulwark %v: exit %d\nstdout: %s\nstderr: %s", args, r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

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
	must(t, f.root, "image", "import", busyboxTar(t, dir), "--tag", "busybox:1")
	must(t, f.root, "trust", "init")
	must(t, f.root, "trust", "sign", "busybox:1")
	return f
}

// busyboxTar writes a rootfs tar of the static busybox with the applets the tests use.
func busyboxTar(t testing.TB, dir string) string {
	t.Helper()
	bb, err := os.ReadFile(testenv.BusyboxPath)
	if err != nil {
		t.Skipf("%s missing (apt-get install busybox-static): %v", testenv.BusyboxPath, err)
	}
	p := filepath.Join(dir, "busybox.tar")
	out, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	tw := tar.NewWriter(out)
	add := func(h *tar.Header, body []byte) {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"bin/", "etc/"} {
		add(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755}, nil)
	}
	add(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bb))}, bb)
	for _, a := range []string{"sh", "echo", "cat", "mkdir", "sleep", "true", "httpd", "wget", "nc", "ip", "timeout"} {
		add(&tar.Header{Name: "bin/" + a, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777}, nil)
	}
	passwd := []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
	add(&tar.Header{Name: "etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(passwd))}, passwd)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLoopbackServeAndConnect: a server in the container binds 127.0.0.1:8080 and a client in
// the same container fetches from it. On the old floor Landlock refused both with a bare EACCES.
func TestLoopbackServeAndConnect(t *testing.T) {
	f := newFixture(t)
	name := f.leaks.Track("loopback")
	out := must(t, f.root, "run", "--rm", "--name", name, "busybox:1", "sh", "-c",
		`mkdir -p /tmp/www && echo served > /tmp/www/index.html && httpd -p 127.0.0.1:8080 -h /tmp/www && wget -qO- http://127.0.0.1:8080/`)
	if out != "served\n" {
		t.Errorf("fetched %q over loopback, want %q", out, "served\n")
	}
	// The same as a non-root user, on a port a non-root server would pick.
	out = must(t, f.root, "run", "--rm", "-u", "nobody", "busybox:1", "sh", "-c",
		`(echo hi | nc -l -p 5432 &); for i in 1 2 3 4 5 6 7 8 9 10; do nc 127.0.0.1 5432 </dev/null 2>/dev/null && exit; sleep 0.1; done; exit 1`)
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
	must(t, f.root, "run", "--rm", "--name", name, "busybox:1", "true")
	recs := must(t, f.root, "audit", "query", "--container", name)
	if !strings.Contains(recs, `"floor.network"`) && !strings.Contains(recs, `"action":"floor.network"`) || !strings.Contains(recs, "MPTCP") {
		t.Errorf("the audit trail has no floor.network record naming MPTCP:\n%s", recs)
	}
}
