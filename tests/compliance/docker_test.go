package compliance

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"bulwark.dev/bulwark/bench"
	"bulwark.dev/bulwark/tests/internal/dockerhost"
	"bulwark.dev/bulwark/tests/internal/testenv"
)

// dockerEnv opts in to TestDockerTargetSideBySide: it starts a private dockerd
// (tests/internal/dockerhost), which takes a few seconds.
const dockerEnv = "BULWARK_TEST_DOCKER"

// TestDockerTargetSideBySide scans a Bulwark container and Docker's containers (found through
// the Docker socket, read from /proc) with the same controls: the Bulwark one passes them all;
// Docker's default container fails, from the kernel's view, what docker-bench passes by reading
// `docker inspect` (no user namespace, capabilities beyond the floor's, no no_new_privs, a writable
// root, no memory or pids limit); a hardened Docker container still fails the user namespace.
func TestDockerTargetSideBySide(t *testing.T) {
	if os.Getenv(dockerEnv) == "" {
		t.Skip(dockerEnv + "=1 runs a private dockerd for this test")
	}
	h := newHost(t)
	d := dockerhost.Start(t, dockerhost.Options{})
	sock := filepath.Join(d.Dir, "docker.sock")
	tar := testenv.BusyboxTar(t, filepath.Join(h.dir, "docker.tar"), []string{"sh", "sleep"}, nil)
	d.Must(t, "import", tar, "busybox:bench")
	for _, run := range [][]string{
		{"--name", "plain"},
		{"--name", "hardened", "--read-only", "--security-opt", "no-new-privileges", "--cap-drop", "ALL",
			"--memory", "64m", "--pids-limit", "64", "--ulimit", "core=0", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"},
	} {
		d.Must(t, append(append([]string{"run", "-d", "--network", "none"}, run...), "busybox:bench", "sleep", "600")...)
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
