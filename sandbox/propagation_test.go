package sandbox

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// propagationTestEnv marks the re-executed test process that runs TestSharedRootfsPropagation's
// body in its own private mount namespace, where it may make the bundle a shared mount.
const propagationTestEnv = "BULWARK_TEST_PROPAGATION_CHILD"

// TestSharedRootfsPropagation: a rootfs that sits on a shared mount (dockerd makes its data root
// rshared, so Docker's vfs rootfs is one) starts, whatever linux.rootfsPropagation asks for:
// pivot_root refuses a shared new root (EINVAL), so the root is made private first. The mounts
// the runtime makes inside the rootfs (/proc, /dev, masks) never propagate back to the host's
// peers of that mount. The test binary re-runs this test in a private mount namespace.
func TestSharedRootfsPropagation(t *testing.T) {
	needRoot(t)
	if os.Getenv(propagationTestEnv) == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSharedRootfsPropagation$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), propagationTestEnv+"=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
		out, err := cmd.CombinedOutput()
		if err == nil && strings.Contains(string(out), "--- SKIP") {
			t.Skipf("%s", out)
		}
		if err != nil || !strings.Contains(string(out), "--- PASS: TestSharedRootfsPropagation") {
			t.Fatalf("in a private mount namespace: %v\n%s", err, out)
		}
		return
	}
	r := newTestRuntime(t)
	bundle, spec := busyboxBundle(t)
	// The bundle becomes a shared mount, as /var/lib/docker is under dockerd.
	if err := unix.Mount(bundle, bundle, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		t.Fatalf("bind bundle: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(bundle, unix.MNT_DETACH) })
	if err := unix.Mount("", bundle, "", unix.MS_SHARED, ""); err != nil {
		t.Fatalf("make bundle shared: %v", err)
	}
	// A bind source on the shared mount, with a tmpfs mounted beneath it inside the container.
	if err := os.MkdirAll(filepath.Join(bundle, "data", "t"), 0o755); err != nil {
		t.Fatal(err)
	}
	spec.Mounts = []specs.Mount{
		{Destination: "/mnt", Type: "bind", Source: filepath.Join(bundle, "data"), Options: []string{"rbind", "ro"}},
		{Destination: "/mnt/t", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=64k"}},
	}
	for i, prop := range []string{"", "shared", "rshared", "slave", "rslave", "private", "rprivate", "unbindable", "runbindable"} {
		id := "prop" + string(rune('a'+i))
		leakCheck(t, id)
		before, _ := os.ReadFile("/proc/self/mountinfo")
		spec.Linux.RootfsPropagation = prop
		spec.Process.Args = []string{"/bin/sh", "-c", "grep -E '^[0-9]+ [0-9]+ [^ ]+ [^ ]+ (/|/mnt|/mnt/t) ' /proc/self/mountinfo"}
		code, out, errOut := run(t, r, id, bundle, spec)
		if code != 0 {
			t.Fatalf("rootfsPropagation %q: exit %d\nout %s\nerr %s", prop, code, out, errOut)
		}
		// Nothing the runtime mounted in the rootfs reached the host's side of the shared mount.
		if after, _ := os.ReadFile("/proc/self/mountinfo"); string(after) != string(before) {
			t.Fatalf("rootfsPropagation %q: mounts propagated to the host:\nbefore\n%s\nafter\n%s", prop, before, after)
		}
		if strings.Count(out, "\n") != 3 || strings.Contains(out, "shared:") {
			t.Fatalf("rootfsPropagation %q: want /, /mnt, /mnt/t, none shared with a peer group:\n%s", prop, out)
		}
		t.Logf("rootfsPropagation %q:\n%s", prop, out)
	}
}

// TestExecOOMScoreAdj: an exec'd process gets the oom_score_adj it asks for (Docker sends one on
// every exec). It cannot open its own /proc/self/oom_score_adj (non-dumpable, its memory map made
// outside the user namespace: EACCES), so the runtime sets it from outside.
func TestExecOOMScoreAdj(t *testing.T) {
	needRoot(t)
	leakCheck(t, "execoom1")
	r := newTestRuntime(t)
	bundle, spec := busyboxBundle(t)
	c := startSleeper(t, r, "execoom1", bundle, spec)
	for _, adj := range []int{7, 0} {
		outR, outW, _ := os.Pipe()
		p, err := c.Exec(&specs.Process{
			Args: []string{"/bin/cat", "/proc/self/oom_score_adj"}, Env: []string{"PATH=/bin"}, Cwd: "/", OOMScoreAdj: &adj,
		}, IO{Stdout: outW, Stderr: outW})
		outW.Close()
		if err != nil {
			t.Fatalf("exec with oomScoreAdj %d: %v", adj, err)
		}
		var out bytes.Buffer
		out.ReadFrom(outR)
		if code, err := p.Wait(); err != nil || code != 0 || strings.TrimSpace(out.String()) != strconv.Itoa(adj) {
			t.Fatalf("oomScoreAdj %d: exit %d, %v, out %q", adj, code, err, out.String())
		}
	}
}
