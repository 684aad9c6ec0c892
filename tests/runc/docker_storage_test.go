package runc

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"bulwark.dev/bulwark/tests/internal/dockerhost"
	"bulwark.dev/bulwark/tests/internal/testenv"
)

// dockerEnv opts in to the Docker end-to-end tests: they start a real dockerd (Debian's
// docker.io), which the default suite does not install, and take a few seconds each.
const dockerEnv = "BULWARK_TEST_DOCKER"

// dockerHost starts a private dockerd on its default storage driver, overlay2, with
// bulwark-runc registered as "bulwark" under the policy data tenants (dockerhost.HookPolicy).
func dockerHost(t *testing.T, tenants string) (*dockerhost.Host, string) {
	t.Helper()
	if os.Getenv(dockerEnv) != "1" {
		t.Skip(dockerEnv + "=1 runs the Docker end-to-end tests (needs docker.io: apt-get install docker.io)")
	}
	testenv.RequireRoot(t)
	runc := testenv.RuntimeBin(t)
	stateRoot := t.TempDir()
	policy := dockerhost.HookPolicy(t, tenants)
	h := dockerhost.Start(t, dockerhost.Options{Runtimes: map[string]dockerhost.Runtime{
		"bulwark": {Path: runc, Args: []string{"--policy", policy, "--state-root", stateRoot, "--docker-root", dockerhost.DataRootArg}},
	}})
	img := testenv.BusyboxTar(t, filepath.Join(t.TempDir(), "bb.tar"), []string{"sh", "echo", "cat", "ls", "id", "true"}, nil)
	h.Must(t, "import", img, "bb:1")
	return h, stateRoot
}

// TestDockerOverlay2: `docker run --runtime bulwark` on dockerd's default storage driver,
// overlay2, whose lower layers the overlay mount names by the symlinks of <data-root>/overlay2/l/
// (the sandbox follows each only beneath that overlay2 directory before idmapping it). Before,
// create failed with "idmapped mount of overlay rootfs layer …/overlay2/l/…: not a directory".
// The only policy data it needs is the hook allowlist entry for dockerd's libnetwork-setkey.
// A Docker named volume (bulwark-runc --docker-root names dockerd's data root) is adopted into
// the storage range on first use: container root writes it, the host sees uid 983040, a second
// container reads it back, `docker volume rm` removes it; one dockerd filled from the image is
// refused saying why. A writable_bind_sources directory chowned to the storage range is written
// by the container's root as host uid 983040 too.
func TestDockerOverlay2(t *testing.T) {
	vols := t.TempDir()
	pg := filepath.Join(vols, "pgdata")
	if err := os.Mkdir(pg, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(pg, 983040, 983040); err != nil {
		t.Fatal(err)
	}
	h, _ := dockerHost(t, fmt.Sprintf(`{"default": {"hook_allowlist": [$DOCKERD], "writable_bind_sources": [%q]}}`, vols))
	if d := h.Must(t, "info", "-f", "{{.Driver}}"); d != "overlay2" {
		t.Fatalf("dockerd runs storage driver %q, not overlay2", d)
	}
	out := h.Must(t, "run", "--runtime", "bulwark", "--rm", "bb:1", "echo", "ok")
	var err error
	if out != "ok" {
		t.Errorf("docker run printed %q", out)
	}
	// The rootfs is the overlay of the image's layer, not a copy of it.
	id := h.Must(t, "create", "--runtime", "bulwark", "bb:1", "true")
	if drv := h.Must(t, "inspect", "-f", "{{.GraphDriver.Name}}", id); drv != "overlay2" {
		t.Errorf("container's graph driver is %q", drv)
	}
	h.Must(t, "start", "-a", id)
	h.Must(t, "rm", id)
	links, err := os.ReadDir(filepath.Join(h.DataRoot(), "overlay2", "l"))
	if err != nil || len(links) == 0 {
		t.Errorf("overlay2/l/ holds no layer links (%v): the test did not exercise them", err)
	}
	for _, l := range links {
		if l.Type()&os.ModeSymlink == 0 {
			t.Errorf("overlay2/l/%s is not a symlink", l.Name())
		}
	}

	if out := h.Must(t, "run", "--runtime", "bulwark", "--rm", "-v", "named:/data", "bb:1", "sh", "-c", "echo x > /data/f && id -u"); out != "0" {
		t.Errorf("write to a Docker named volume printed %q", out)
	}
	data := filepath.Join(h.DataRoot(), "volumes", "named", "_data")
	for _, p := range []string{data, filepath.Join(data, "f")} {
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil || st.Uid != 983040 || st.Gid != 983040 {
			t.Errorf("%s: %v, owner %d:%d, want 983040:983040", p, err, st.Uid, st.Gid)
		}
	}
	if out := h.Must(t, "run", "--runtime", "bulwark", "--rm", "-v", "named:/data", "bb:1", "cat", "/data/f"); out != "x" {
		t.Errorf("a second container read %q from the volume", out)
	}
	h.Must(t, "volume", "rm", "named")
	out, err = h.Docker("run", "--runtime", "bulwark", "--rm", "-v", "filled:/etc", "bb:1", "true")
	if err == nil || !strings.Contains(out, "DOCKER_VOLUME_NOT_EMPTY") {
		t.Errorf("a Docker volume filled from the image: %v\n%s", err, out)
	}
	if out := h.Must(t, "run", "--runtime", "bulwark", "--rm", "-v", pg+":/data", "bb:1", "sh", "-c", "echo x > /data/f && cat /data/f"); out != "x" {
		t.Errorf("write to the allowlisted bind printed %q", out)
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(pg, "f"), &st); err != nil || st.Uid != 983040 || st.Gid != 983040 {
		t.Errorf("the file container root wrote: %v, owner %d:%d, want 983040:983040", err, st.Uid, st.Gid)
	}
}
