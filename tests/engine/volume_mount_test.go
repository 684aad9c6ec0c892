package engine

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"bulwark.dev/bulwark/sandbox"
	"bulwark.dev/bulwark/tests/internal/clitest"
	"bulwark.dev/bulwark/tests/internal/testenv"
)

// TestMountFlag (issue 12): docker's --mount syntax. A volume (named or anonymous), a tmpfs with
// its size, a bind writable unless readonly (as in docker: policy refuses what it does not grant,
// never read-only in silence); an unknown key is refused before anything is made; rm -v takes the
// container's anonymous volumes and leaves its named ones, a plain rm leaves both.
func TestMountFlag(t *testing.T) {
	f := newFixture(t)
	host := filepath.Join(f.dir, "host")
	os.MkdirAll(host, 0o755)
	os.WriteFile(filepath.Join(host, "f"), []byte("from host\n"), 0o644)

	r := clitest.Run(t, f.root, "run", "--rm", "--name", f.name(t, "mnt"), "--mount", "type=volume,dst=/v,colour=blue", "busybox:1", "true")
	if r.Code != 125 || !strings.Contains(r.Stderr, `unknown key "colour"`) {
		t.Errorf("unknown key: exit %d, stderr %s", r.Code, r.Stderr)
	}
	r = clitest.Run(t, f.root, "run", "--rm", "--name", f.name(t, "mnt"), "--mount", "type=bind,src="+host+",dst=/h", "busybox:1", "true")
	if r.Code != 125 || !strings.Contains(r.Stderr, "MOUNT_WRITABLE_NOT_ALLOWED") {
		t.Errorf("writable bind without a grant: exit %d, stderr %s", r.Code, r.Stderr)
	}
	if out := clitest.Must(t, f.root, "volume", "ls", "-q"); out != "" {
		t.Errorf("refused runs left volumes: %q", out)
	}

	id := f.name(t, "mnt")
	r = clitest.Run(t, f.root, "run", "--name", id, "--policy-dir", testenv.BindPolicy(t, host),
		"--mount", "type=volume,source=named,target=/n", "--mount", "destination=/anon",
		"--mount", "type=tmpfs,dst=/cache,tmpfs-size=1m,tmpfs-mode=1770",
		"--mount", "type=bind,src="+host+",dst=/h,readonly", "busybox:1", "sh", "-c",
		`echo n > /n/f && echo a > /anon/f && cat /h/f && stat -c %a /cache && df -k /cache | tail -1 | awk '{print $2}'
echo x > /h/g 2>/dev/null && echo h-written || echo h-ro`)
	if want := "from host\n1770\n1024\nh-ro\n"; r.Code != 0 || r.Stdout != want {
		t.Errorf("mounts: exit %d, stdout %q, want %q; stderr %s", r.Code, r.Stdout, want, r.Stderr)
	}
	vols := strings.Fields(clitest.Must(t, f.root, "volume", "ls", "-q"))
	if len(vols) != 2 || vols[0] != "named" && vols[1] != "named" {
		t.Fatalf("volumes after the run: %v", vols)
	}
	clitest.Must(t, f.root, "rm", "-v", id)
	if out := clitest.Must(t, f.root, "volume", "ls", "-q"); out != "named\n" {
		t.Errorf("rm -v: volumes left %q, want only the named one", out)
	}
	clitest.Must(t, f.root, "volume", "rm", "named")
	f.assertNothingLeft(t)
}

// TestVolumeFilledOnFirstMount (issue 12): a volume made by `volume create` is filled from the
// image at its destination on its first mount, as docker does, and only then: emptied by a
// container, it stays empty; nocopy leaves a new volume empty; a dry run fills nothing.
func TestVolumeFilledOnFirstMount(t *testing.T) {
	f := newFixture(t)
	clitest.Must(t, f.root, "volume", "create", "made")
	clitest.Must(t, f.root, "volume", "create", "bare")
	r := clitest.Run(t, f.root, "run", "--rm", "--name", f.name(t, "fill"), "-v", "made:/data", "-v", "bare:/etc:nocopy", "busybox:1", "sh", "-c",
		"cat /data/marker; ls -A /etc | grep -v -e hostname -e hosts -e resolv.conf; echo end; rm /data/marker")
	if want := "signed\nend\n"; r.Code != 0 || r.Stdout != want {
		t.Errorf("first mount: exit %d, stdout %q, want %q; stderr %s", r.Code, r.Stdout, want, r.Stderr)
	}
	r = clitest.Run(t, f.root, "run", "--rm", "--name", f.name(t, "fill"), "-v", "made:/data", "busybox:1", "sh", "-c", "ls -A /data; echo end")
	if r.Code != 0 || r.Stdout != "end\n" {
		t.Errorf("emptied volume filled again: exit %d, stdout %q, stderr %s", r.Code, r.Stdout, r.Stderr)
	}
	// A dry run writes nothing into a volume; the first real run fills it.
	clitest.Must(t, f.root, "volume", "create", "dry")
	clitest.Must(t, f.root, "run", "--dry-run", "--name", f.name(t, "fill"), "-v", "dry:/data", "busybox:1", "true")
	if ents, err := os.ReadDir(filepath.Join(f.root, "volumes", "default", "dry", "_data")); err != nil || len(ents) != 0 {
		t.Errorf("a dry run filled the volume: %v %v", ents, err)
	}
	r = clitest.Run(t, f.root, "run", "--rm", "--name", f.name(t, "fill"), "-v", "dry:/data", "busybox:1", "cat", "/data/marker")
	if r.Code != 0 || r.Stdout != "signed\n" {
		t.Errorf("first real run after a dry run: exit %d, stdout %q, stderr %s", r.Code, r.Stdout, r.Stderr)
	}
	clitest.Must(t, f.root, "volume", "rm", "made", "bare", "dry")
	f.assertNothingLeft(t)
}

// TestVolumeExecGrant (issue 12): a volume is noexec; exec on it is asked for (-v NAME:DST:exec)
// and refused by the default policy with its reason, and allowed where the tenant's data says
// exec_volumes: true. Without asking, a granted tenant's volume stays noexec.
func TestVolumeExecGrant(t *testing.T) {
	f := newFixture(t)
	script := `cp /bin/busybox /v/busybox 2>/dev/null; /v/busybox true 2>/dev/null && echo exec-allowed || echo noexec`
	r := clitest.Run(t, f.root, "run", "--rm", "--name", f.name(t, "exec"), "-v", "tools:/v:exec", "busybox:1", "sh", "-c", script)
	if r.Code != 125 || !strings.Contains(r.Stderr, "MOUNT_EXEC_NOT_GRANTED") || !strings.Contains(r.Stderr, "exec_volumes") {
		t.Errorf("exec without a grant: exit %d, stderr %s", r.Code, r.Stderr)
	}
	pol := t.TempDir()
	os.WriteFile(filepath.Join(pol, "data.json"), []byte(`{"bulwark": {"tenants": {"default": {"max_memory": 1073741824, "max_pids": 1024, "exec_volumes": true}}}}`), 0o644)
	for mode, want := range map[string]string{"rw,exec": "exec-allowed\n", "rw": "noexec\n"} {
		r = clitest.Run(t, f.root, "run", "--rm", "--name", f.name(t, "exec"), "--policy-dir", pol, "-v", "tools:/v:"+mode, "busybox:1", "sh", "-c", script)
		if r.Code != 0 || r.Stdout != want {
			t.Errorf("granted tenant, mode %s: exit %d, stdout %q, want %q; stderr %s", mode, r.Code, r.Stdout, want, r.Stderr)
		}
	}
	clitest.Must(t, f.root, "volume", "rm", "tools")
	f.assertNothingLeft(t)
}

// TestVolumePersistence (issue 12): a redis-like append-only writer on a named volume, its
// container removed (rm -v, which keeps named volumes), a new container replays the file; what
// container root wrote belongs on the host to the storage range, never to host root.
func TestVolumePersistence(t *testing.T) {
	f := newFixture(t)
	id := f.name(t, "aof")
	r := clitest.Run(t, f.root, "run", "--name", id, "-v", "redis:/data", "busybox:1", "sh", "-c",
		`for i in 1 2 3; do echo "SET k$i v$i" >> /data/appendonly.aof; done; sync`)
	if r.Code != 0 {
		t.Fatalf("writer: exit %d, stderr %s", r.Code, r.Stderr)
	}
	clitest.Must(t, f.root, "rm", "-v", id)
	r = clitest.Run(t, f.root, "run", "--rm", "--name", f.name(t, "aof"), "-v", "redis:/data", "busybox:1", "sh", "-c",
		`while read cmd k v; do echo "$k=$v"; done < /data/appendonly.aof`)
	if want := "k1=v1\nk2=v2\nk3=v3\n"; r.Code != 0 || r.Stdout != want {
		t.Errorf("replay: exit %d, stdout %q, want %q; stderr %s", r.Code, r.Stdout, want, r.Stderr)
	}
	var st syscall.Stat_t
	aof := filepath.Join(f.root, "volumes", "default", "redis", "_data", "appendonly.aof")
	if err := syscall.Lstat(aof, &st); err != nil || st.Uid != sandbox.StorageIDBase || st.Gid != sandbox.StorageIDBase {
		t.Errorf("host owner of the aof: %d:%d (%v), want the storage range's root %d", st.Uid, st.Gid, err, sandbox.StorageIDBase)
	}
	clitest.Must(t, f.root, "volume", "rm", "redis")
	f.assertNothingLeft(t)
}

// TestVolumeNonRootOwner (issue 12): like postgres initdb as user postgres. The image's VOLUME
// directory belongs to uid 70 with mode 0700; a new volume there (made by the run, or by volume
// create and filled on first mount) keeps that owner and mode, so the non-root user creates its
// files, owned on the host by the storage range's 70.
func TestVolumeNonRootOwner(t *testing.T) {
	f := newFixture(t)
	extra := layerTar(t, []tarEntry{
		{name: "etc/passwd", body: "root:x:0:0:root:/root:/bin/sh\npostgres:x:70:70:postgres:/var/lib/postgresql:/bin/sh\n", mode: 0o644},
		{name: "var/", dir: true, mode: 0o755},
		{name: "var/lib/", dir: true, mode: 0o755},
		{name: "var/lib/postgresql/", dir: true, mode: 0o755, uid: 70},
		{name: "var/lib/postgresql/data/", dir: true, mode: 0o700, uid: 70},
	})
	clitest.Must(t, f.root, "image", "import", imageLayout(t, f.dir, `"Volumes":{"/var/lib/postgresql/data":{}}`, extra), "--tag", "pg:1")
	clitest.Must(t, f.root, "trust", "sign", "pg:1")
	clitest.Must(t, f.root, "volume", "create", "made")
	initdb := `cd /var/lib/postgresql/data && id -u && mkdir base && echo 15 > PG_VERSION && chmod 600 PG_VERSION && stat -c '%u %a' . PG_VERSION base`
	for _, vol := range []string{"made", "byrun"} {
		r := clitest.Run(t, f.root, "run", "--rm", "--name", f.name(t, "pg"), "-u", "postgres", "-v", vol+":/var/lib/postgresql/data", "pg:1", "sh", "-c", initdb)
		if want := "70\n70 700\n70 600\n70 755\n"; r.Code != 0 || r.Stdout != want {
			t.Errorf("%s: exit %d, stdout %q, want %q; stderr %s", vol, r.Code, r.Stdout, want, r.Stderr)
		}
		var st syscall.Stat_t
		p := filepath.Join(f.root, "volumes", "default", vol, "_data", "PG_VERSION")
		if err := syscall.Lstat(p, &st); err != nil || st.Uid != sandbox.StorageIDBase+70 {
			t.Errorf("%s: host owner of PG_VERSION %d (%v), want %d", vol, st.Uid, err, sandbox.StorageIDBase+70)
		}
	}
	clitest.Must(t, f.root, "volume", "rm", "made", "byrun")
	f.assertNothingLeft(t)
}

// TestVolumeHostile (issue 12): symlinks a container plants in a volume, pointing out of it
// (absolute, to a host directory; relative, climbing above _data), are never followed out by
// anything the host side does with the volume: a later mount through them lands inside the
// container's own root, a fill from an image's symlink is copied as a symlink, df does not count
// what they point at, volume rm removes the links and not their targets. A volume a running
// container mounts is not removed (conflict, exit 1). Names with / or .. are refused everywhere.
// Two tenants' volumes of one name stay apart.
func TestVolumeHostile(t *testing.T) {
	f := newFixture(t)
	canary := filepath.Join(f.dir, "canary")
	os.MkdirAll(canary, 0o755)
	os.WriteFile(filepath.Join(canary, "keep"), []byte("host\n"), 0o644)

	r := clitest.Run(t, f.root, "run", "--rm", "--name", f.name(t, "evil"), "-v", "evil:/v", "busybox:1", "sh", "-c",
		"ln -s "+canary+" /v/abs && ln -s ../../../../../../../.. /v/up && ln -s / /v/root && echo planted")
	if r.Code != 0 || r.Stdout != "planted\n" {
		t.Fatalf("plant: exit %d, stdout %q, stderr %s", r.Code, r.Stdout, r.Stderr)
	}
	// Mount destinations through the planted links resolve inside the container's root.
	r = clitest.Run(t, f.root, "run", "--rm", "--name", f.name(t, "evil"), "-v", "evil:/v", "-v", "other:/v/abs/sub",
		"--mount", "type=tmpfs,dst=/v/up/x", "busybox:1", "sh", "-c", "echo in > /v/abs/sub/f && echo written")
	if r.Code != 0 || r.Stdout != "written\n" {
		t.Errorf("mount through links: exit %d, stdout %q, stderr %s", r.Code, r.Stdout, r.Stderr)
	}
	if ents, _ := os.ReadDir(canary); len(ents) != 1 {
		t.Errorf("the host directory a volume link names was written: %v", ents)
	}
	if _, err := os.Lstat(filepath.Join(f.dir, "x")); err == nil {
		t.Error("a tmpfs mount through a relative link landed on the host")
	}
	du := systemDf(t, f.root)
	for _, v := range du.Volumes {
		// A sized volume (the default policy's) counts its filesystem image, links inside it or not.
		if v.Size > v.Limit+1<<20 {
			t.Errorf("df of %s counted what its links point at: %d bytes", v.Name, v.Size)
		}
	}
	clitest.Must(t, f.root, "volume", "rm", "evil", "other")
	if b, err := os.ReadFile(filepath.Join(canary, "keep")); err != nil || string(b) != "host\n" {
		t.Errorf("canary after volume rm: %q %v", b, err)
	}

	// A fill copies an image's symlinks as symlinks, whatever they name.
	links := layerTar(t, []tarEntry{{name: "srv/", dir: true, mode: 0o755}, {name: "srv/abs", link: canary}, {name: "srv/up", link: "../../../../../.."}})
	clitest.Must(t, f.root, "image", "import", imageLayout(t, f.dir, `"Env":["X=1"]`, links), "--tag", "links:1")
	clitest.Must(t, f.root, "trust", "sign", "links:1")
	if r := clitest.Run(t, f.root, "run", "--rm", "--name", f.name(t, "links"), "-v", "filled:/srv", "links:1", "true"); r.Code != 0 {
		t.Errorf("fill of links: exit %d, stderr %s", r.Code, r.Stderr)
	}
	for name, want := range map[string]string{"abs": canary, "up": "../../../../../.."} {
		got, err := os.Readlink(filepath.Join(f.root, "volumes", "default", "filled", "_data", name))
		if err != nil || got != want {
			t.Errorf("filled %s: %q %v, want a symlink to %q", name, got, err, want)
		}
	}
	clitest.Must(t, f.root, "volume", "rm", "filled")
	if b, err := os.ReadFile(filepath.Join(canary, "keep")); err != nil || string(b) != "host\n" {
		t.Errorf("canary after the fill: %q %v", b, err)
	}
	id := f.name(t, "busy")
	clitest.Must(t, f.root, "run", "-d", "--name", id, "-v", "busy:/v", "busybox:1", "sleep", "60")
	r = clitest.Run(t, f.root, "volume", "rm", "busy")
	if r.Code != 1 || !strings.Contains(r.Stderr, "in use") {
		t.Errorf("volume rm of a volume a running container mounts: exit %d, stderr %s", r.Code, r.Stderr)
	}
	clitest.Must(t, f.root, "rm", "-f", id)
	clitest.Must(t, f.root, "volume", "rm", "busy")

	for _, bad := range []string{"../x:/d", "a/b:/d", "..:/d", ".:/d"} {
		if r := clitest.Run(t, f.root, "run", "--rm", "--name", f.name(t, "bad"), "-v", bad, "busybox:1", "true"); r.Code != 125 {
			t.Errorf("-v %s: exit %d, stderr %s", bad, r.Code, r.Stderr)
		}
	}
	for _, bad := range []string{"../x", "a/b", "x/..", "/abs"} {
		if r := clitest.Run(t, f.root, "volume", "rm", bad); r.Code == 0 || !strings.Contains(r.Stderr, "volume name") {
			t.Errorf("volume rm %s: exit %d, stderr %s", bad, r.Code, r.Stderr)
		}
	}
	if out := clitest.Must(t, f.root, "volume", "ls", "-q"); out != "" {
		t.Errorf("volumes left: %q", out)
	}
	f.assertNothingLeft(t)
}
