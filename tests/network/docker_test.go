package network

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
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

// DockerEnv opts in to the Docker end-to-end test: it starts a real dockerd (Debian's docker.io),
// which takes ~10 s and a package the default suite does not install.
const DockerEnv = "BULWARK_TEST_DOCKER"

// dockerHost is a dockerd in a private mount and network namespace (docs/runtime.md), with
// bulwark-runc registered as runtimes: "bulwark" under policy data that allowlists dockerd's own
// binary (its libnetwork-setkey prestart hook plugs every container into docker0), and
// "bulwark-nohooks" under the shipped data (no hook allowed). Its bridge, veths, NAT rules and
// docker-proxy live in that namespace and vanish with it.
type dockerHost struct {
	dir, cli, cgroupParent, stateRoot string
	daemon                            *exec.Cmd
	pid                               int // dockerd's, for nsenter
}

func newDockerHost(t *testing.T) *dockerHost {
	t.Helper()
	if os.Getenv(DockerEnv) != "1" {
		t.Skip(DockerEnv + "=1 runs the Docker end-to-end test (needs docker.io: apt-get install docker.io)")
	}
	testenv.RequireRoot(t)
	runc := testenv.RuntimeBin(t)
	dockerd, err := exec.LookPath("dockerd")
	if err != nil {
		t.Skip("dockerd missing (apt-get install docker.io)")
	}
	if dockerd, err = filepath.EvalSymlinks(dockerd); err != nil {
		t.Fatal(err)
	}
	cli := "/usr/bin/docker" // docker.io's client speaks its daemon's API version
	if _, err := os.Stat(cli); err != nil {
		t.Skip("docker.io's client /usr/bin/docker missing")
	}
	if fi, err := os.Stat("/etc/docker"); err != nil || !fi.IsDir() {
		t.Skip("/etc/docker missing (dockerd's trust key goes there; the test covers it with a tmpfs)")
	}
	var b [4]byte
	rand.Read(b[:])
	h := &dockerHost{dir: t.TempDir(), cli: cli, cgroupParent: "bwtest-docker-" + hex.EncodeToString(b[:]), stateRoot: t.TempDir()}
	digest := fileDigest(t, dockerd)
	allow := writePolicy(t, fmt.Sprintf(`{"default": {"hook_allowlist": [{"path": %q, "sha256": %q}]}}`, dockerd, digest))
	none := writePolicy(t, `{"default": {}}`)
	conf := fmt.Sprintf(`{"runtimes": {
  "bulwark": {"path": %[1]q, "runtimeArgs": ["--policy", %[2]q, "--state-root", %[4]q]},
  "bulwark-nohooks": {"path": %[1]q, "runtimeArgs": ["--policy", %[3]q, "--state-root", %[4]q]}},
 "exec-opts": ["native.cgroupdriver=cgroupfs"], "cgroup-parent": %[5]q, "storage-driver": "vfs",
 "data-root": %[6]q, "exec-root": %[7]q, "pidfile": %[8]q, "hosts": [%[9]q]}`,
		runc, allow, none, h.stateRoot, h.cgroupParent, filepath.Join(h.dir, "data"), filepath.Join(h.dir, "exec"),
		filepath.Join(h.dir, "docker.pid"), "unix://"+h.sock())
	confFile := filepath.Join(h.dir, "daemon.json")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(h.dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	h.daemon = exec.Command("unshare", "--mount", "--net", "--propagation", "private", "--fork", "--kill-child=SIGTERM",
		"sh", "-c", "mount -t tmpfs tmpfs /etc/docker && ip link set lo up && exec dockerd --config-file "+confFile)
	h.daemon.Stdout, h.daemon.Stderr = logf, logf
	if err := h.daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.stop(t) })
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := h.docker("version"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dockerd did not start:\n%s", h.log())
		}
		time.Sleep(200 * time.Millisecond)
	}
	pid, err := os.ReadFile(filepath.Join(h.dir, "docker.pid"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Sscan(string(pid), &h.pid)
	return h
}

func (h *dockerHost) sock() string { return filepath.Join(h.dir, "docker.sock") }

func (h *dockerHost) log() string {
	b, _ := os.ReadFile(filepath.Join(h.dir, "dockerd.log"))
	return string(b)
}

// docker runs the client against this daemon and returns its combined output.
func (h *dockerHost) docker(args ...string) (string, error) {
	out, err := exec.Command(h.cli, append([]string{"-H", "unix://" + h.sock()}, args...)...).CombinedOutput()
	return string(out), err
}

func (h *dockerHost) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := h.docker(args...)
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(out)
}

// inNetns runs a command in the daemon's network namespace (the test's "host").
func (h *dockerHost) inNetns(args ...string) (string, error) {
	out, err := exec.Command("nsenter", append([]string{"-t", fmt.Sprint(h.pid), "-n"}, args...)...).CombinedOutput()
	return string(out), err
}

// stop removes every container, stops dockerd and its namespaces, and removes the cgroup parent
// the containers' cgroups were made below.
func (h *dockerHost) stop(t *testing.T) {
	if out, err := h.docker("ps", "-aq"); err == nil && strings.TrimSpace(out) != "" {
		if out, err := h.docker(append([]string{"rm", "-f"}, strings.Fields(out)...)...); err != nil {
			t.Errorf("docker rm -f: %v\n%s", err, out)
		}
	}
	// dockerd itself: unshare would pass the signal on only as it dies.
	if h.pid > 0 {
		_ = syscall.Kill(h.pid, syscall.SIGTERM)
	} else {
		_ = h.daemon.Process.Signal(syscall.SIGTERM)
	}
	done := make(chan error, 1)
	go func() { done <- h.daemon.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = h.daemon.Process.Kill()
		<-done
		t.Errorf("dockerd did not stop in 60 s:\n%s", h.log())
	}
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + h.cgroupParent)
	for _, d := range dirs {
		if err := os.Remove(d); err != nil {
			t.Errorf("cgroup parent left: %v", err)
		}
	}
}

func fileDigest(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := sha256.New()
	if _, err := io.Copy(s, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(s.Sum(nil))
}

// writePolicy writes operator data with the shipped defaults and the given tenants.
func writePolicy(t *testing.T, tenants string) string {
	t.Helper()
	data := `{"bulwark": {"defaults": {"grantable_capabilities": ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "SETUID", "SETGID", "KILL", "NET_BIND_SERVICE"],
  "max_memory": 8589934592, "max_pids": 4096, "bind_sources": [], "writable_bind_sources": []}, "tenants": ` + tenants + `}}`
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "data.json"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestDockerPublish: `docker run --runtime bulwark -p 8080:8000` serves on the host's
// 127.0.0.1:8080 (the host being dockerd's namespace): dockerd's libnetwork-setkey prestart hook
// runs because the operator allowlisted dockerd's binary, and is audited; the address docker
// inspect reports is the container's own. Without the allowlist entry the hook, and so the run,
// is refused with the reason (before hooks were dropped in silence and -p did nothing), and
// --network host is refused saying why.
func TestDockerPublish(t *testing.T) {
	h := newDockerHost(t)
	dir := t.TempDir()
	img := testenv.BusyboxTar(t, filepath.Join(dir, "bb.tar"), []string{"sh", "httpd", "ip", "true"},
		map[string]string{"www/index.html": "served by bulwark\n"})
	h.must(t, "import", img, "bb:1")

	h.must(t, "run", "-d", "--name", "web", "--runtime", "bulwark", "-p", "8080:8000", "bb:1", "httpd", "-f", "-p", "8000", "-h", "/www")
	var body string
	deadline := time.Now().Add(20 * time.Second)
	for {
		// busybox's wget -T segfaults: the host's timeout bounds it.
		out, err := h.inNetns("timeout", "5", testenv.BusyboxPath, "wget", "-q", "-O", "-", "http://127.0.0.1:8080/")
		if err == nil {
			body = out
			break
		}
		if time.Now().After(deadline) {
			logs, _ := h.docker("logs", "web")
			t.Fatalf("127.0.0.1:8080 never served: %v %s\ncontainer logs: %s", err, out, logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if body != "served by bulwark\n" {
		t.Errorf("127.0.0.1:8080 served %q", body)
	}
	ip := h.must(t, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web")
	if inside := h.must(t, "exec", "web", "ip", "-4", "-o", "addr", "show", "eth0"); ip == "" || !strings.Contains(inside, " "+ip+"/") {
		t.Errorf("docker inspect says %q, the container has %q", ip, inside)
	}
	hooks := auditOf(t, h.stateRoot, "hook")
	if len(hooks) == 0 || hooks[0]["phase"] != "prestart" || hooks[0]["result"] != "ok" || !strings.Contains(hooks[0]["args"], "libnetwork-setkey") {
		t.Errorf("no audited libnetwork-setkey run: %v", hooks)
	}

	out, err := h.docker("run", "--rm", "--runtime", "bulwark-nohooks", "bb:1", "true")
	if err == nil || !strings.Contains(out, "HOOK_NOT_ALLOWED") || !strings.Contains(out, "prestart hook /proc/") {
		t.Errorf("a run whose hook is not allowlisted: %v\n%s", err, out)
	}
	out, err = h.docker("run", "--rm", "--runtime", "bulwark", "--network", "host", "bb:1", "true")
	if err == nil || !strings.Contains(out, "NAMESPACE_SHARED: network namespace is shared with the host or another process: the container would reach every service") {
		t.Errorf("--network host: %v\n%s", err, out)
	}
}

// auditOf returns the attributes of the audit records of action under stateRoot, in order
// (`bulwark audit query`, which also checks the chain as it reads).
func auditOf(t *testing.T, stateRoot, action string) []map[string]string {
	t.Helper()
	out := clitest.Must(t, stateRoot, "audit", "query", "--type", "container")
	var recs []map[string]string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r struct {
			Action string            `json:"action"`
			Attrs  map[string]string `json:"attrs"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("audit record is not JSON: %v\n%s", err, line)
		}
		if r.Action == action {
			recs = append(recs, r.Attrs)
		}
	}
	return recs
}
