package runc

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

// dockerLayout makes <dockerRoot>/volumes/NAME/_data as dockerd does for a new named volume:
// an empty directory owned by host root, mode 0755.
func dockerLayout(t *testing.T, dockerRoot, name string) string {
	t.Helper()
	d := filepath.Join(dockerRoot, "volumes", name, "_data")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

func ownerOf(t *testing.T, p string) (uint32, uint32) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Uid, st.Gid
}

// volumeBundle is a bundle whose process runs script with src bound writable at /data, as
// dockerd asks for -v NAME:/data.
func volumeBundle(t *testing.T, leaks *testenv.Leaks, src, script string) string {
	b := testenv.Bundle(t, testenv.Spec([]string{"/bin/sh", "-c", script},
		testenv.WithMount(specs.Mount{Destination: "/data", Type: "bind", Source: src, Options: []string{"rbind"}})))
	leaks.Dir(b)
	return b
}

// TestDockerVolumeAdoption: the on-disk layout of a Docker named volume under a data root given
// with --docker-root, run by bulwark-runc from an OCI bundle as dockerd would (no dockerd: the
// default suite covers it). A new, empty volume is adopted once into the storage range (audited
// volume.adopt): container root writes it, the host sees the file as uid 983040, and a second
// container reads it back without a second adoption. Without --docker-root the same bind is a
// host path outside the allowlist; a volume dockerd filled with the image's files is refused
// (DOCKER_VOLUME_NOT_EMPTY) unless the tenant's data grants adopting its contents, which shifts
// every id N to 983040+N; a _data (or volume directory) that is a symlink out of the data root is
// no Docker volume, and nothing it points at changes owner. Before, every such bind was refused
// (the old code has no --docker-root: the create fails on the flag).
func TestDockerVolumeAdoption(t *testing.T) {
	c, leaks, sr := policyCLI(t)
	dockerRoot := t.TempDir()
	const base = 983040

	vol := dockerLayout(t, dockerRoot, "pgdata")
	writer := volumeBundle(t, leaks, vol, "id -u > /data/who && echo written")
	id := leaks.Track(testenv.UniqueID(t))
	if r := c.run("--state-root", sr, "run", "--bundle", writer, id); r.code == 0 || !strings.Contains(r.stderr, "MOUNT_HOST_PATH_NOT_ALLOWED") {
		t.Errorf("Docker volume without --docker-root: %+v", r)
	}
	if u, _ := ownerOf(t, vol); u != 0 {
		t.Fatalf("a refused run changed the volume's owner to %d", u)
	}

	if out := c.ok("--state-root", sr, "--docker-root", dockerRoot, "run", "--bundle", writer, id); out != "written\n" {
		t.Errorf("run printed %q", out)
	}
	if u, g := ownerOf(t, vol); u != base || g != base {
		t.Errorf("adopted volume owned by %d:%d, want %d", u, g, base)
	}
	if u, g := ownerOf(t, filepath.Join(vol, "who")); u != base || g != base {
		t.Errorf("file container root wrote is host %d:%d, want %d", u, g, base)
	}
	reader := volumeBundle(t, leaks, vol, "cat /data/who; touch /data/again")
	if out := c.ok("--state-root", sr, "--docker-root", dockerRoot, "run", "--bundle", reader, id); out != "0\n" {
		t.Errorf("second container read %q, want container root's uid 0", out)
	}
	// An exec is decided on the same mounts: the volume is a Docker volume there too (docker
	// exec was refused with MOUNT_HOST_PATH_NOT_ALLOWED).
	sleeper := volumeBundle(t, leaks, vol, "sleep 60")
	sid := leaks.Track(testenv.UniqueID(t) + "-x")
	c.ok("--state-root", sr, "--docker-root", dockerRoot, "create", "--bundle", sleeper, sid)
	t.Cleanup(func() { c.run("delete", "--force", sid) })
	c.ok("start", sid)
	if out := c.ok("--state-root", sr, "--docker-root", dockerRoot, "exec", sid, "cat", "/data/who"); out != "0\n" {
		t.Errorf("exec read %q", out)
	}
	c.ok("delete", "--force", sid)
	adopts := auditRecords(t, sr, func(r auditRecord) bool { return r.Action == "volume.adopt" })
	if len(adopts) != 1 || adopts[0].Attrs["volume"] != "pgdata" || adopts[0].Attrs["from"] != "empty" {
		t.Errorf("volume.adopt records: %+v, want one for pgdata from empty", adopts)
	}

	// Filled by dockerd from the image: the image's ids, as they are on the host.
	filled := dockerLayout(t, dockerRoot, "filled")
	if err := os.WriteFile(filepath.Join(filled, "conf"), []byte("image\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filled, filepath.Join(filled, "conf")} {
		if err := os.Chown(p, 999, 999); err != nil {
			t.Fatal(err)
		}
	}
	fb := volumeBundle(t, leaks, filled, "cat /data/conf && echo more >> /data/conf")
	if r := c.run("--state-root", sr, "--docker-root", dockerRoot, "run", "--bundle", fb, id); r.code == 0 || !strings.Contains(r.stderr, "DOCKER_VOLUME_NOT_EMPTY") {
		t.Errorf("filled volume without the grant: %+v", r)
	}
	if u, _ := ownerOf(t, filepath.Join(filled, "conf")); u != 999 {
		t.Errorf("refused: the file's owner changed to %d", u)
	}
	pol := t.TempDir()
	writeFile(t, filepath.Join(pol, "data.json"), `{"bulwark": {"tenants": {"default": {"adopt_docker_volume_contents": true, "max_memory": 1073741824, "max_pids": 1024}}}}`)
	// The image's file belongs to its user 999, which the container's root may not write
	// without DAC_OVERRIDE: the bundle's process runs as that user.
	fbUser := testenv.Bundle(t, testenv.Spec([]string{"/bin/sh", "-c", "cat /data/conf && echo more >> /data/conf"},
		testenv.WithMount(specs.Mount{Destination: "/data", Type: "bind", Source: filled, Options: []string{"rbind"}}),
		func(s *specs.Spec) { s.Process.User = specs.User{UID: 999, GID: 999} }))
	leaks.Dir(fbUser)
	if out := c.ok("--state-root", sr, "--docker-root", dockerRoot, "--policy", pol, "run", "--bundle", fbUser, id); out != "image\n" {
		t.Errorf("granted filled volume: printed %q", out)
	}
	for _, p := range []string{filled, filepath.Join(filled, "conf")} {
		if u, g := ownerOf(t, p); u != base+999 || g != base+999 {
			t.Errorf("%s owned by %d:%d, want %d", p, u, g, base+999)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(filled, "conf")); string(b) != "image\nmore\n" {
		t.Errorf("the image user's write: %q", b)
	}

	// Symlinks out of the data root: _data itself, and the volume's directory.
	outside := t.TempDir()
	if err := os.Mkdir(filepath.Join(outside, "_data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dockerRoot, "volumes", "evil"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dockerRoot, "volumes", "evil", "_data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dockerRoot, "volumes", "evil2")); err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{filepath.Join(dockerRoot, "volumes", "evil", "_data"), filepath.Join(dockerRoot, "volumes", "evil2", "_data")} {
		b := volumeBundle(t, leaks, src, "touch /data/x")
		if r := c.run("--state-root", sr, "--docker-root", dockerRoot, "run", "--bundle", b, id); r.code == 0 || !strings.Contains(r.stderr, "MOUNT_HOST_PATH_NOT_ALLOWED") {
			t.Errorf("%s: %+v", src, r)
		}
	}
	for _, p := range []string{outside, filepath.Join(outside, "_data")} {
		if u, _ := ownerOf(t, p); u != 0 {
			t.Errorf("%s outside the data root changed owner to %d", p, u)
		}
	}
	verifyAudit(t, sr)
	leaks.AssertNone(t)
}
