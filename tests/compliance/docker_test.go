package compliance

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"bulwark.dev/bulwark/bench"
	"bulwark.dev/bulwark/tests/internal/testenv"
)

// dockerEnv opts in to TestDockerTargetSideBySide: it starts a private dockerd (its own socket,
// data root on the test's temp dir, no bridge, no iptables), which takes a few seconds.
const dockerEnv = "BULWARK_TEST_DOCKER"

// dockerd starts a private Docker daemon in the test's mount namespace and returns its socket.
func dockerd(t *testing.T, dir string) string {
	t.Helper()
	if os.Getenv(dockerEnv) == "" {
		t.Skip(dockerEnv + "=1 runs a private dockerd for this test")
	}
	bin, err := exec.LookPath("dockerd")
	if err != nil {
		t.Skip("dockerd missing (apt-get install docker.io)")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "docker.sock")
	log, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"--host", "unix://"+sock, "--pidfile", filepath.Join(dir, "docker.pid"), "--bridge", "none",
		"--iptables=false", "--ip6tables=false", "--ip-masq=false", "--userland-proxy=false", "--storage-driver", "vfs")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		log.Close()
	})
	for i := 0; i < 100; i++ {
		if out, err := docker(sock, "version", "--format", "{{.Server.Version}}"); err == nil {
			t.Logf("dockerd %s", strings.TrimSpace(out))
			return sock
		}
		time.Sleep(200 * time.Millisecond)
	}
	b, _ := os.ReadFile(log.Name())
	t.Fatalf("dockerd did not answer:\n%s", b)
	return ""
}

func docker(sock string, args ...string) (string, error) {
	cmd := exec.Command("docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+sock)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestDockerTargetSideBySide scans a Bulwark container and Docker's containers (found through
// the Docker socket, read from /proc) with the same controls: the Bulwark one passes them all;
// Docker's default container fails, from the kernel's view, what docker-bench passes by reading
// `docker inspect` (no user namespace, capabilities beyond the floor's, no no_new_privs, a writable
// root, no memory or pids limit); a hardened Docker container still fails the user namespace.
func TestDockerTargetSideBySide(t *testing.T) {
	h := newHost(t)
	sock := dockerd(t, filepath.Join(h.dir, "docker"))
	tar := testenv.BusyboxTar(t, filepath.Join(h.dir, "docker.tar"), []string{"sh", "sleep"}, nil)
	if out, err := docker(sock, "import", tar, "busybox:bench"); err != nil {
		t.Fatalf("docker import: %v\n%s", err, out)
	}
	for _, run := range [][]string{
		{"--name", "plain"},
		{"--name", "hardened", "--read-only", "--security-opt", "no-new-privileges", "--cap-drop", "ALL",
			"--memory", "64m", "--pids-limit", "64", "--ulimit", "core=0", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"},
	} {
		args := append(append([]string{"run", "-d", "--network", "none"}, run...), "busybox:bench", "sleep", "600")
		if out, err := docker(sock, args...); err != nil {
			t.Fatalf("docker %v: %v\n%s", args, err, out)
		}
		name := run[1]
		t.Cleanup(func() { docker(sock, "rm", "-f", name) })
	}
	rep, _ := scan(t, h.root, "--target", "bulwark,docker", "--docker-socket", sock, "--check", "runtime")
	if len(rep.Containers) != 3 {
		t.Fatalf("containers %v", rep.Containers)
	}
	failed := map[string][]string{}
	for _, r := range rep.Results {
		for _, f := range r.Findings {
			if f.Status == bench.Fail {
				failed[f.Target] = append(failed[f.Target], r.ID)
			}
		}
	}
	for target, ids := range failed {
		t.Logf("%s fails %v", target, ids)
		if strings.HasPrefix(target, "bulwark:") {
			t.Errorf("the Bulwark container fails %v", ids)
		}
	}
	for _, id := range []string{"BW-5.2", "BW-5.4", "BW-5.5", "BW-5.6", "BW-5.8", "BW-5.13", "BW-5.14"} {
		if !slices.Contains(failed["docker:plain"], id) {
			t.Errorf("Docker's default container passes %s", id)
		}
	}
	if !slices.Contains(failed["docker:hardened"], "BW-5.2") {
		t.Errorf("the hardened Docker container (no user namespace) passes BW-5.2")
	}
	for _, id := range []string{"BW-5.4", "BW-5.5", "BW-5.6", "BW-5.8", "BW-5.13", "BW-5.14", "BW-5.15"} {
		if slices.Contains(failed["docker:hardened"], id) {
			t.Errorf("the hardened Docker container fails %s", id)
		}
	}
}
