package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func TestBusyboxRootfs(t *testing.T) {
	root := BusyboxRootfs(t)
	for _, p := range []string{"bin/busybox", "bin/sh", "bin/probe", "proc", "tmp", "etc/passwd"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err != nil {
			t.Errorf("rootfs lacks %s: %v", p, err)
		}
	}
	// The probe in the rootfs is static and runs anywhere; outside a user namespace it refuses
	// its intrusive sections.
	out, err := exec.Command(filepath.Join(root, "bin", "probe"), "ids", "forbidden").Output()
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	r := ParseReport(t, out)
	if r.IDs == nil || len(r.IDs.UIDMap) == 0 {
		t.Fatalf("probe reported no uid map: %s", out)
	}
	if !strings.HasPrefix(r.Forbidden["refused"], "not in a user namespace") {
		t.Errorf("probe ran forbidden operations on the host: %v", r.Forbidden)
	}
}

func TestBundleWritesConfig(t *testing.T) {
	b := Bundle(t, Spec([]string{"/bin/probe"}, WithHostname("h1")))
	s := ReadConfig(t, b)
	if s.Root.Path != "rootfs" || s.Hostname != "h1" || s.Process.Args[0] != "/bin/probe" {
		t.Errorf("config.json round trip: %+v", s)
	}
	if st, err := os.Stat(b); err != nil || st.Mode().Perm() != 0o711 {
		t.Errorf("bundle dir not traversable: %v %v", st.Mode(), err)
	}
}

func TestLeaksFindsMountAndState(t *testing.T) {
	RequireRoot(t)
	dir := t.TempDir()
	root := t.TempDir()
	id := UniqueID(t)
	l := &Leaks{t: t, stateRoot: root, dirs: []string{dir}, ids: []string{id}}
	if got := l.Find(); len(got) != 0 {
		t.Fatalf("clean state reported as leaks: %v", got)
	}
	// A mount on the test's own temp path, removed before the test ends.
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatalf("mount: %v", err)
	}
	got := l.Find()
	unix.Unmount(dir, unix.MNT_DETACH)
	if len(got) != 1 || !strings.HasPrefix(got[0], "mount: ") {
		t.Errorf("mount leak not found exactly once: %v", got)
	}
	os.MkdirAll(filepath.Join(root, "containers", id), 0o700)
	os.MkdirAll(filepath.Join(root, "idmap"), 0o700)
	os.WriteFile(filepath.Join(root, "idmap", "ranges.json"), []byte(`{"holders":["`+id+`"]}`), 0o600)
	got = l.Find()
	if len(got) != 2 {
		t.Errorf("want a state dir and an id range leak, got %v", got)
	}
	os.Remove(filepath.Join(root, "idmap", "ranges.json"))
	os.MkdirAll(filepath.Join(root, "idmap", "holders", "74"), 0o700)
	os.WriteFile(filepath.Join(root, "idmap", "holders", "74", id), nil, 0o600)
	if got = l.Find(); len(got) != 2 {
		t.Errorf("want a state dir and an id range holder leak, got %v", got)
	}
	// A holder names its runtime's root too (sandbox.rangeHolder).
	os.Remove(filepath.Join(root, "idmap", "holders", "74", id))
	os.WriteFile(filepath.Join(root, "idmap", "holders", "74", id+"@0123456789abcdef"), nil, 0o600)
	if got = l.Find(); len(got) != 2 {
		t.Errorf("want a state dir and an id range holder leak, got %v", got)
	}
}

func TestLeaksFindsCgroupAndProcess(t *testing.T) {
	RequireRoot(t)
	hier := "/sys/fs/cgroup/pids"
	if _, err := os.Stat(filepath.Join(hier, "cgroup.procs")); err != nil {
		t.Skipf("no v1 pids hierarchy: %v", err)
	}
	id := UniqueID(t)
	l := &Leaks{t: t, ids: []string{id}}
	cg := filepath.Join(hier, id) // the test's own child cgroup
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(cg)
	sleep := exec.Command("sleep", "30")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	defer sleep.Wait()
	defer sleep.Process.Kill()
	if err := os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte(strconv.Itoa(sleep.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(l.Find(), "\n")
	if !strings.Contains(got, "cgroup: "+cg) || !strings.Contains(got, "process "+strconv.Itoa(sleep.Process.Pid)) {
		t.Errorf("cgroup and process leak not both found:\n%s", got)
	}
}
