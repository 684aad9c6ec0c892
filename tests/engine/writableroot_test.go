package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bulwark.dev/bulwark/tests/internal/clitest"
)

// TestWritableRoot (issue 12): --read-only=false is refused with the reason unless the tenant's
// policy grants a writable root (writable_root_size); granted, the root is writable through a
// per-container upper filesystem of that size: a write past it fails with ENOSPC inside, the
// root stays nosuid, what the workload wrote can be executed (what the grant gives up), the
// writes are the container's alone (the next container does not see them) and go with it, and
// nothing is mounted on the host nor left behind.
func TestWritableRoot(t *testing.T) {
	f := newFixture(t)
	none := quotaPolicy(t, `"max_volume_size": 16777216`)
	r := clitest.Run(t, f.root, "run", "--rm", "--policy-dir", none, "--name", f.name(t, "wroot"), "--read-only=false", "busybox:1", "true")
	if r.Code != 125 || !strings.Contains(r.Stderr, "ROOTFS_WRITABLE") || !strings.Contains(r.Stderr, "writable_root_size") {
		t.Errorf("--read-only=false without the grant: exit %d, stderr %s", r.Code, r.Stderr)
	}

	pol := quotaPolicy(t, `"writable_root_size": 16777216`)
	id := f.name(t, "wroot")
	r = clitest.Run(t, f.root, "run", "--policy-dir", pol, "--name", id, "--read-only=false", "busybox:1", "sh", "-c",
		`echo hi > /etc/newfile && cat /etc/newfile
cp /bin/busybox /etc/true && /etc/true && echo exec-written
awk '$2 == "/" {print ($4 ~ /(^|,)rw(,|$)/) ? "rw" : "ro", ($4 ~ /nosuid/) ? "nosuid" : "suid"}' /proc/self/mounts
dd if=/dev/zero of=/big bs=1M count=32 2>&1 | grep -o "No space left on device" | head -1
s=$(stat -c %s /big); echo $((s <= 16777216))`)
	if want := "hi\nexec-written\nrw nosuid\nNo space left on device\n1\n"; r.Code != 0 || r.Stdout != want {
		t.Errorf("writable root: exit %d, stdout %q, want %q; stderr %s", r.Code, r.Stdout, want, r.Stderr)
	}
	img := filepath.Join(f.root, "engine", id, "upper.img")
	if st, err := os.Stat(img); err != nil || st.Size() != 16<<20 {
		t.Errorf("the container's upper filesystem: %v %v", st, err)
	}
	// Another container starts from the image again.
	r = clitest.Run(t, f.root, "run", "--rm", "--policy-dir", pol, "--name", f.name(t, "wroot"), "--read-only=false", "busybox:1", "sh", "-c",
		`ls /etc/newfile /big 2>/dev/null; echo end`)
	if r.Code != 0 || r.Stdout != "end\n" {
		t.Errorf("the next container: exit %d, stdout %q, stderr %s", r.Code, r.Stdout, r.Stderr)
	}
	clitest.Must(t, f.root, "rm", id)
	if _, err := os.Stat(img); !os.IsNotExist(err) {
		t.Errorf("the upper filesystem after rm: %v", err)
	}
	f.assertNothingLeft(t) // mounts and loop devices under the state root included
}

// TestWritableRootCounted (issue 12): a writable root counts toward the tenant's
// max_volumes_size beside its volumes, both ways: a writable root that would bring the tenant
// over it is refused with the reason while a volume holds the space, and a volume is refused
// while a container's writable root holds it; removing the one lets the other be made.
func TestWritableRootCounted(t *testing.T) {
	f := newFixture(t)
	pol := quotaPolicy(t, `"writable_root_size": 16777216, "max_volumes_size": 25165824`)
	if r := clitest.Run(t, f.root, "volume", "create", "--policy-dir", pol, "--opt", "size=10m", "q"); r.Code != 0 {
		t.Fatalf("volume create: exit %d, %s", r.Code, r.Stderr)
	}
	r := clitest.Run(t, f.root, "run", "--rm", "--policy-dir", pol, "--name", f.name(t, "wroot"), "--read-only=false", "busybox:1", "true")
	if r.Code != 125 || !strings.Contains(r.Stderr, "VOLUMES_TOTAL_NOT_GRANTED") || !strings.Contains(r.Stderr, "writable root") {
		t.Errorf("writable root over the total: exit %d, stderr %s", r.Code, r.Stderr)
	}
	clitest.Must(t, f.root, "volume", "rm", "q")

	id := f.name(t, "wroot")
	if r := clitest.Run(t, f.root, "run", "--policy-dir", pol, "--name", id, "--read-only=false", "busybox:1", "true"); r.Code != 0 {
		t.Fatalf("writable root within the total: exit %d, %s", r.Code, r.Stderr)
	}
	r = clitest.Run(t, f.root, "volume", "create", "--policy-dir", pol, "--opt", "size=10m", "q")
	if r.Code == 0 || !strings.Contains(r.Stderr, "VOLUMES_TOTAL_NOT_GRANTED") {
		t.Errorf("volume while a writable root holds the space: exit %d, stderr %s", r.Code, r.Stderr)
	}
	clitest.Must(t, f.root, "rm", id)
	clitest.Must(t, f.root, "volume", "create", "--policy-dir", pol, "--opt", "size=10m", "q")
	clitest.Must(t, f.root, "volume", "rm", "q")
	f.assertNothingLeft(t)
}
