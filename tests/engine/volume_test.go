package engine

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"bulwark.dev/bulwark/sandbox"
	"bulwark.dev/bulwark/tests/internal/clitest"
	"bulwark.dev/bulwark/tests/internal/testenv"
)

// TestWritableBinds (issue 12): -v SRC:DST:rw is writable where the tenant's
// writable_bind_sources allow it and refused elsewhere (it was accepted and made read-only
// silently); container root writes there as the storage range (host ids from
// sandbox.StorageIDBase, never host root), without exec; a read-only bind refuses writes; a
// single-file bind onto a path the image lacks works (it failed with EINVAL).
func TestWritableBinds(t *testing.T) {
	f := newFixture(t)
	rw := filepath.Join(f.dir, "rw")
	os.MkdirAll(rw, 0o755)
	base := int(sandbox.StorageIDBase)
	if err := os.Chown(rw, base, base); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(f.dir, "one.conf")
	os.WriteFile(file, []byte("one file\n"), 0o644)

	// Only readable: :rw is an error, never read-only in silence.
	ro := testenv.BindPolicy(t, rw)
	id := f.name(t, "vol")
	r := clitest.Run(t, f.root, "run", "--rm", "--name", id, "--policy-dir", ro, "-v", rw+":/data:rw", "busybox:1", "true")
	if r.Code != 125 || !strings.Contains(r.Stderr, "MOUNT_WRITABLE_NOT_ALLOWED") {
		t.Errorf(":rw on a read-only source: exit %d, stderr %s", r.Code, r.Stderr)
	}

	pol := testenv.WritableBindPolicy(t, rw, file)
	id = f.name(t, "vol")
	script := `id -u; echo hello > /data/f && echo wrote; mkdir /data/d && chown 1000:1000 /data/d && echo chowned
cp /bin/busybox /data/busybox && (/data/busybox true 2>/dev/null && echo exec-allowed || echo noexec)
echo x > /ro/f 2>/dev/null && echo ro-written || echo ro-refused
cat /etc/one.conf; stat -c %u:%g /data/f`
	r = clitest.Run(t, f.root, "run", "--rm", "--name", id, "--policy-dir", pol, "-v", rw+":/data:rw", "-v", rw+":/ro:ro",
		"-v", file+":/etc/one.conf:ro", "busybox:1", "sh", "-c", script)
	want := "0\nwrote\nchowned\nnoexec\nro-refused\none file\n0:0\n"
	if r.Code != 0 || r.Stdout != want {
		t.Errorf("exit %d, stdout %q, want %q; stderr %s", r.Code, r.Stdout, want, r.Stderr)
	}
	for p, wantUID := range map[string]int{"f": base, "d": base + 1000, "busybox": base} {
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(rw, p), &st); err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if int(st.Uid) != wantUID || int(st.Gid) != wantUID {
			t.Errorf("host owner of %s: %d:%d, want %d:%d", p, st.Uid, st.Gid, wantUID, wantUID)
		}
	}
	f.assertNothingLeft(t)
}

// TestNamedVolumes (issue 12): bulwark volume create|ls|inspect|rm|prune and -v NAME:/DST. Data
// written by container root through a volume is read back by the next container; on the host it
// belongs to the storage range, never host root; :ro refuses writes; a volume is noexec; names
// are per tenant (bob's "data" is his own, the default tenant's is missing to him and its path
// is refused to him by policy); a mounted volume is not removed; nothing is left behind.
func TestNamedVolumes(t *testing.T) {
	f := newFixture(t)
	pol := t.TempDir()
	os.WriteFile(filepath.Join(pol, "data.json"), []byte(`{"bulwark": {"tenants": {"default": {"max_memory": 1073741824, "max_pids": 1024, "grantable_capabilities": ["CHOWN", "DAC_OVERRIDE", "FOWNER"]}, "bob": {"max_memory": 1073741824, "max_pids": 1024}}}}`), 0o644)
	run := func(args ...string) clitest.Result {
		return clitest.Run(t, f.root, append([]string{"run", "--policy-dir", pol}, args...)...)
	}
	if out := clitest.Must(t, f.root, "volume", "create", "data"); out != "data\n" {
		t.Errorf("volume create: %q", out)
	}
	for _, bad := range []string{"../x", ".hidden", "a/b"} {
		if r := clitest.Run(t, f.root, "volume", "create", bad); r.Code == 0 {
			t.Errorf("volume create %q succeeded", bad)
		}
	}
	if out := clitest.Must(t, f.root, "volume", "ls"); !strings.Contains(strings.Join(strings.Fields(out), " "), "local data") {
		t.Errorf("volume ls: %q", out)
	}
	r := run("--rm", "--name", f.name(t, "vol"), "-v", "data:/v", "busybox:1", "sh", "-c",
		`echo kept > /v/f && mkdir /v/app && chown 1000:1000 /v/app && stat -c %u:%g /v/f /v/app
cp /bin/busybox /v/busybox && (/v/busybox true 2>/dev/null && echo exec-allowed || echo noexec)`)
	if want := "0:0\n1000:1000\nnoexec\n"; r.Code != 0 || r.Stdout != want {
		t.Errorf("write: exit %d, stdout %q, want %q; stderr %s", r.Code, r.Stdout, want, r.Stderr)
	}
	data := filepath.Join(f.root, "volumes", "default", "data", "_data")
	base := int(sandbox.StorageIDBase)
	for p, want := range map[string]int{".": base, "f": base, "app": base + 1000} {
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(data, p), &st); err != nil || int(st.Uid) != want || int(st.Gid) != want {
			t.Errorf("host owner of %s: %d:%d (%v), want %d", p, st.Uid, st.Gid, err, want)
		}
	}
	r = run("--rm", "--name", f.name(t, "vol"), "-v", "data:/v:ro", "busybox:1", "sh", "-c",
		`cat /v/f; echo x > /v/g 2>/dev/null && echo written || echo ro-refused`)
	if want := "kept\nro-refused\n"; r.Code != 0 || r.Stdout != want {
		t.Errorf("read back: exit %d, stdout %q, want %q; stderr %s", r.Code, r.Stdout, want, r.Stderr)
	}

	// A new volume starts with the image's content at its destination (docker's copy-up),
	// owned by the storage range on the host.
	r = run("--rm", "--name", f.name(t, "vol"), "-v", "etcvol:/etc", "busybox:1", "sh", "-c", "head -1 /etc/passwd; stat -c %u /etc/passwd")
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, "root:") || !strings.HasSuffix(r.Stdout, "\n0\n") {
		t.Errorf("copy-up: exit %d, stdout %q, stderr %s", r.Code, r.Stdout, r.Stderr)
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(f.root, "volumes", "default", "etcvol", "_data", "passwd"), &st); err != nil || int(st.Uid) != base {
		t.Errorf("copied passwd: owner %d (%v), want %d", st.Uid, err, base)
	}
	clitest.Must(t, f.root, "volume", "rm", "etcvol")

	// Another tenant: its own "data" (new, empty), never the default tenant's.
	if r := clitest.Run(t, f.root, "volume", "inspect", "--tenant", "bob", "data"); r.Code != 1 || !strings.Contains(r.Stderr, "no such volume") {
		t.Errorf("bob inspects the default tenant's volume: exit %d, %s", r.Code, r.Stderr)
	}
	r = run("--rm", "--tenant", "bob", "--name", f.name(t, "vol"), "-v", "data:/v", "busybox:1", "sh", "-c", "ls -A /v; echo end")
	if r.Code != 0 || r.Stdout != "end\n" {
		t.Errorf("bob's data: exit %d, stdout %q, stderr %s", r.Code, r.Stdout, r.Stderr)
	}
	r = run("--rm", "--tenant", "bob", "--name", f.name(t, "vol"), "-v", data+":/v:rw", "busybox:1", "true")
	if r.Code != 125 || !strings.Contains(r.Stderr, "MOUNT_STATE_ROOT") {
		t.Errorf("bob binds the default tenant's volume by path: exit %d, stderr %s", r.Code, r.Stderr)
	}

	// A container that mounts it (stopped, not removed) keeps it.
	id := f.name(t, "vol")
	if r := run("--name", id, "-v", "data:/v", "busybox:1", "true"); r.Code != 0 {
		t.Fatalf("run: %d %s", r.Code, r.Stderr)
	}
	if r := clitest.Run(t, f.root, "volume", "rm", "data"); r.Code == 0 || !strings.Contains(r.Stderr, "in use") {
		t.Errorf("volume rm of a mounted volume: exit %d, stderr %s", r.Code, r.Stderr)
	}
	if out := clitest.Must(t, f.root, "volume", "prune"); out != "" {
		t.Errorf("prune removed a mounted volume: %q", out)
	}
	clitest.Must(t, f.root, "rm", id)
	clitest.Must(t, f.root, "volume", "rm", "data")
	if out := clitest.Must(t, f.root, "volume", "prune", "--tenant", "bob"); out != "data\n" {
		t.Errorf("bob's prune: %q", out)
	}
	for _, tenant := range []string{"default", "bob"} {
		if ents, _ := os.ReadDir(filepath.Join(f.root, "volumes", tenant)); len(ents) != 0 {
			t.Errorf("left in %s's volumes: %v", tenant, ents)
		}
	}
	f.assertNothingLeft(t)
}

// tarEntry is one entry of a layer layerTar writes: a directory, a symlink to link, or a file
// (uid is the gid too).
type tarEntry struct {
	name, body, link string
	dir              bool
	mode             int64
	uid              int
}

// layerTar returns an uncompressed layer of entries, in order.
func layerTar(t *testing.T, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: tar.TypeReg, Mode: e.mode, Uid: e.uid, Gid: e.uid, Size: int64(len(e.body))}
		if e.dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if e.link != "" {
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.link, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// imageLayout writes an OCI layout of the busybox layer and the extra layers above it, whose
// config's "config" object holds Cmd ["sh"] and the JSON fields config (e.g. a "Volumes" entry).
func imageLayout(t *testing.T, dir, config string, extra ...[]byte) string {
	t.Helper()
	layer, err := os.ReadFile(busyboxTar(t, dir, "vol"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.MkdirTemp(dir, "layout-")
	if err != nil {
		t.Fatal(err)
	}
	blob := func(b []byte) string {
		sum := sha256.Sum256(b)
		h := hex.EncodeToString(sum[:])
		os.MkdirAll(filepath.Join(out, "blobs", "sha256"), 0o755)
		if err := os.WriteFile(filepath.Join(out, "blobs", "sha256", h), b, 0o644); err != nil {
			t.Fatal(err)
		}
		return "sha256:" + h
	}
	var diffIDs, layers []string
	for _, l := range append([][]byte{layer}, extra...) {
		d := blob(l)
		diffIDs = append(diffIDs, fmt.Sprintf("%q", d))
		layers = append(layers, fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}`, d, len(l)))
	}
	cfg := []byte(fmt.Sprintf(`{"architecture":%q,"os":"linux","config":{"Cmd":["sh"],%s},"rootfs":{"type":"layers","diff_ids":[%s]}}`, runtime.GOARCH, config, strings.Join(diffIDs, ",")))
	cd := blob(cfg)
	man := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[%s]}`, cd, len(cfg), strings.Join(layers, ",")))
	md := blob(man)
	os.WriteFile(filepath.Join(out, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	os.WriteFile(filepath.Join(out, "index.json"), []byte(fmt.Sprintf(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":%d}]}`, md, len(man))), 0o644)
	return out
}

// TestAnonymousVolumes (issue 12): an image's VOLUME path gets an anonymous volume, writable
// (the root filesystem is not), filled from the image; --rm takes it with the container, a
// container removed without --rm leaves it to volume prune; a -v on that path replaces it.
func TestAnonymousVolumes(t *testing.T) {
	f := newFixture(t)
	clitest.Must(t, f.root, "image", "import", imageLayout(t, f.dir, `"Volumes":{"/data":{}}`), "--tag", "withvol:1")
	clitest.Must(t, f.root, "trust", "sign", "withvol:1")
	r := clitest.Run(t, f.root, "run", "--rm", "--name", f.name(t, "anon"), "withvol:1", "sh", "-c", "echo x > /data/f && cat /data/f")
	if r.Code != 0 || r.Stdout != "x\n" {
		t.Errorf("--rm: exit %d, stdout %q, stderr %s", r.Code, r.Stdout, r.Stderr)
	}
	if out := clitest.Must(t, f.root, "volume", "ls", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("--rm left volumes: %q", out)
	}
	id := f.name(t, "anon")
	if r := clitest.Run(t, f.root, "run", "--name", id, "withvol:1", "sh", "-c", "echo x > /data/f"); r.Code != 0 {
		t.Fatalf("run: exit %d, stderr %s", r.Code, r.Stderr)
	}
	clitest.Must(t, f.root, "rm", id)
	if out := clitest.Must(t, f.root, "volume", "prune"); len(strings.Fields(out)) != 1 {
		t.Errorf("prune after rm: %q", out)
	}
	r = clitest.Run(t, f.root, "run", "--rm", "--name", f.name(t, "anon"), "-v", "named:/data", "withvol:1", "sh", "-c", "echo y > /data/g")
	if r.Code != 0 {
		t.Errorf("-v over a VOLUME path: exit %d, stderr %s", r.Code, r.Stderr)
	}
	if out := clitest.Must(t, f.root, "volume", "ls", "-q"); strings.TrimSpace(out) != "named" {
		t.Errorf("volumes after -v over the VOLUME path: %q", out)
	}
	clitest.Must(t, f.root, "volume", "rm", "named")
	f.assertNothingLeft(t)
}
