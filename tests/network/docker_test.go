package network

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bulwark.dev/bulwark/tests/internal/clitest"
	"bulwark.dev/bulwark/tests/internal/dockerhost"
	"bulwark.dev/bulwark/tests/internal/testenv"
)

// DockerEnv opts in to the Docker end-to-end test: it starts a real dockerd (Debian's docker.io),
// which needs a package the default suite does not install (docker.io) and takes a few seconds.
const DockerEnv = "BULWARK_TEST_DOCKER"

// TestDockerPublish: `docker run --runtime bulwark -p 8080:8000` serves on the host's
// 127.0.0.1:8080 (the host being dockerd's namespace): dockerd's libnetwork-setkey prestart hook
// runs because the operator allowlisted dockerd's binary, and is audited; the address docker
// inspect reports is the container's own. Without the allowlist entry the hook, and so the run,
// is refused with the reason (before hooks were dropped in silence and -p did nothing), and
// --network host is refused saying why.
func TestDockerPublish(t *testing.T) {
	if os.Getenv(DockerEnv) != "1" {
		t.Skip(DockerEnv + "=1 runs the Docker end-to-end test (needs docker.io: apt-get install docker.io)")
	}
	testenv.RequireRoot(t)
	runc := testenv.RuntimeBin(t)
	stateRoot := t.TempDir()
	allow := dockerhost.HookPolicy(t, `{"default": {"hook_allowlist": [$DOCKERD]}}`)
	none := dockerhost.HookPolicy(t, `{"default": {}}`)
	h := dockerhost.Start(t, dockerhost.Options{UserlandProxy: true, Runtimes: map[string]dockerhost.Runtime{
		"bulwark":         {Path: runc, Args: []string{"--policy", allow, "--state-root", stateRoot}},
		"bulwark-nohooks": {Path: runc, Args: []string{"--policy", none, "--state-root", stateRoot}},
	}})
	dir := t.TempDir()
	img := testenv.BusyboxTar(t, filepath.Join(dir, "bb.tar"), []string{"sh", "httpd", "ip", "true"},
		map[string]string{"www/index.html": "served by bulwark\n"})
	h.Must(t, "import", img, "bb:1")

	h.Must(t, "run", "-d", "--name", "web", "--runtime", "bulwark", "-p", "8080:8000", "bb:1", "httpd", "-f", "-p", "8000", "-h", "/www")
	var body string
	deadline := time.Now().Add(20 * time.Second)
	for {
		// busybox's wget -T segfaults: the host's timeout bounds it.
		b, err := h.InNetns("timeout", "5", testenv.BusyboxPath, "wget", "-q", "-O", "-", "http://127.0.0.1:8080/").CombinedOutput()
		out := string(b)
		if err == nil {
			body = out
			break
		}
		if time.Now().After(deadline) {
			logs, _ := h.Docker("logs", "web")
			t.Fatalf("127.0.0.1:8080 never served: %v %s\ncontainer logs: %s", err, out, logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if body != "served by bulwark\n" {
		t.Errorf("127.0.0.1:8080 served %q", body)
	}
	ip := h.Must(t, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web")
	if inside := h.Must(t, "exec", "web", "ip", "-4", "-o", "addr", "show", "eth0"); ip == "" || !strings.Contains(inside, " "+ip+"/") {
		t.Errorf("docker inspect says %q, the container has %q", ip, inside)
	}
	hooks := auditOf(t, stateRoot, "hook")
	if len(hooks) == 0 || hooks[0]["phase"] != "prestart" || hooks[0]["result"] != "ok" || !strings.Contains(hooks[0]["args"], "libnetwork-setkey") {
		t.Errorf("no audited libnetwork-setkey run: %v", hooks)
	}

	out, err := h.Docker("run", "--rm", "--runtime", "bulwark-nohooks", "bb:1", "true")
	if err == nil || !strings.Contains(out, "HOOK_NOT_ALLOWED") || !strings.Contains(out, "prestart hook /proc/") {
		t.Errorf("a run whose hook is not allowlisted: %v\n%s", err, out)
	}
	out, err = h.Docker("run", "--rm", "--runtime", "bulwark", "--network", "host", "bb:1", "true")
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
