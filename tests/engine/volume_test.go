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
cp /bin/busybox /data/bb && (/data/bb true 2>/dev/null && echo exec-allowed || echo noexec)
echo x > /ro/f 2>/dev/null && echo ro-written || echo ro-refused
cat /etc/one.conf; stat -c %u:%g /data/f`
	r = clitest.Run(t, f.root, "run", "--rm", "--name", id, "--policy-dir", pol, "-v", rw+":/data:rw", "-v", rw+":/ro:ro",
		"-v", file+":/etc/one.conf:ro", "busybox:1", "sh", "-c", script)
	want := "0\nwrote\nchowned\nnoexec\nro-refused\none file\n0:0\n"
	if r.Code != 0 || r.Stdout != want {
		t.Errorf("exit %d, stdout %q, want %q; stderr %s", r.Code, r.Stdout, want, r.Stderr)
	}
	for p, wantUID := range map[string]int{"f": base, "d": base + 1000, "bb": base} {
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
