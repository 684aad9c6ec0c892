package attacks

import (
	"os"
	"path/filepath"
	"testing"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

// TestCVE_2019_19921 replays runc's /proc symlink attack in its static form: the image makes /proc
// a symlink (here to a directory of fake proc files it controls), so a runtime that follows it
// may mount procfs elsewhere and then apply masks and security writes to the image's fake files
// instead of the kernel's. Bulwark resolves mount targets inside the rootfs and the rootfs is
// read-only, so the race half of the CVE (swapping the link mid-setup) has nothing to write to;
// what must hold is that /proc, however reached, is a real procfs with every mask and read-only
// path in force, and the process fully confined.
func TestCVE_2019_19921(t *testing.T) {
	e := testenv.NewEnv(t, "tenant-attacks")
	e.Prepare = func(rootfs string) {
		fake := filepath.Join(rootfs, "fakeproc", "self", "attr")
		if err := os.MkdirAll(fake, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(rootfs, "proc")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("/fakeproc", filepath.Join(rootfs, "proc")); err != nil {
			t.Fatal(err)
		}
	}
	c, err := e.Create(nil, testenv.Spec(testenv.ProbeArgs("mounts", "status", "caps", "landlock", "ns", "masked", "writable")))
	if err != nil {
		t.Logf("image with /proc as a symlink refused: %v", err)
		return
	}
	if err := c.Start(); err != nil {
		t.Logf("refused at start: %v", err)
		return
	}
	if code := c.WaitExit(); code != 0 {
		t.Fatalf("probe exited %d%s", code, c.ErrText())
	}
	r := c.Report()
	var procAt string
	for _, mt := range r.Mounts {
		if mt.FSType == "proc" && (procAt == "" || len(mt.Mountpoint) < len(procAt)) {
			procAt = mt.Mountpoint
		}
	}
	if procAt != "/proc" {
		// runc refuses such an image outright; following the link inside a read-only root is
		// contained, so it is reported rather than failed.
		t.Logf("procfs mounted at %s through the image's /proc symlink", procAt)
	}
	if r.Status.Pid != 1 || r.NS == nil || r.NS["pid"] == "" {
		t.Errorf("/proc/self does not describe this process: %+v", r.Status)
	}
	for _, p := range []string{"/proc/keys", "/proc/timer_list", "/proc/acpi", "/sys/firmware"} {
		if m := r.Masked[p]; m.Exists && (m.Bytes != 0 || m.Entries != 0) {
			t.Errorf("ESCAPE: %s not masked through the /proc symlink: %+v", p, m)
		}
	}
	if got := r.Writable["/proc/sys/kernel/hostname"]; got == "" {
		t.Errorf("ESCAPE: /proc/sys writable through the /proc symlink")
	}
	if r.Status.NoNewPrivs != 1 || r.Status.Seccomp != 2 {
		t.Errorf("confinement lost: nnp %d seccomp %d", r.Status.NoNewPrivs, r.Status.Seccomp)
	}
	if c := r.Caps; c.Eff|c.Prm|c.Bnd|c.Inh|c.Amb != 0 {
		t.Errorf("capabilities %+v", c)
	}
	if r.Landlock.DevCreate != "EACCES" {
		t.Errorf("Landlock not in force (create in /dev: %q)", r.Landlock.DevCreate)
	}
}
