package sandbox

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestHostileMountTargets: a symlink in the image pointing at the host's /etc, or climbing out
// with "..", must be resolved inside the rootfs; the host path must stay untouched.
func TestHostileMountTargets(t *testing.T) {
	needRoot(t)
	leakCheck(t, "hostile1")
	r := newTestRuntime(t)
	bundle, spec := busyboxBundle(t)
	rootfs := filepath.Join(bundle, "rootfs")
	hostDir := t.TempDir() // stands in for a host directory the image tries to reach
	if err := os.Symlink(hostDir, filepath.Join(rootfs, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../"+hostDir, filepath.Join(rootfs, "climb")); err != nil {
		t.Fatal(err)
	}
	spec.Mounts = []specs.Mount{
		{Destination: "/escape", Type: "tmpfs", Source: "tmpfs"},
		{Destination: "/climb/sub", Type: "tmpfs", Source: "tmpfs"},
	}
	spec.Process.Args = []string{"/bin/true"}
	code, out, errOut := run(t, r, "hostile1", bundle, spec)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	ents, _ := os.ReadDir(hostDir)
	if len(ents) != 0 {
		t.Fatalf("mount setup wrote into the host directory: %v", ents)
	}
}

// TestBindMounts: a bind asked read-only arrives read-only and nosuid; one asked read-write
// (policy decides whether its source may be written) arrives writable, noexec and idmapped to the
// storage range: container root writes as StorageIDBase on the host, never as host root. (exec on a
// writable bind is policy's to grant: TestFloorMountOptions.)
func TestBindMounts(t *testing.T) {
	needRoot(t)
	leakCheck(t, "bind1")
	r := newTestRuntime(t)
	bundle, spec := busyboxBundle(t)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "data"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(src, int(StorageIDBase), int(StorageIDBase)); err != nil {
		t.Fatal(err)
	}
	spec.Mounts = []specs.Mount{
		{Destination: "/ro", Type: "bind", Source: src, Options: []string{"rbind", "ro"}},
		{Destination: "/rw", Type: "bind", Source: src, Options: []string{"rbind", "rw"}},
	}
	spec.Process.Args = []string{"/bin/sh", "-c", `cat /ro/data; echo x > /ro/new 2>/dev/null && echo RO-WRITABLE
echo x > /rw/new && echo rw-written; cp /bin/busybox /rw/bb && /rw/bb true 2>/dev/null && echo RW-EXEC
grep -E ' /(ro|rw) ' /proc/self/mountinfo | cut -d' ' -f5,6`}
	code, out, errOut := run(t, r, "bind1", bundle, spec)
	t.Log(out, errOut)
	if code != 0 || !strings.HasPrefix(out, "hello") || strings.Contains(out, "WRITABLE") || strings.Contains(out, "RW-EXEC") ||
		!strings.Contains(out, "rw-written") || !strings.Contains(out, "/ro ro,nosuid,nodev") ||
		!strings.Contains(out, "/rw rw,nosuid,nodev,noexec") || !strings.Contains(out, "idmapped") {
		t.Fatalf("exit %d, output %q", code, out)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(src, "new"), &st); err != nil || st.Uid != StorageIDBase || st.Gid != StorageIDBase {
		t.Errorf("host owner of a file container root wrote: %d:%d (%v), want %d", st.Uid, st.Gid, err, StorageIDBase)
	}
}

// TestMountsInSpecOrder: the container lists its mounts in the spec's order, binds (made by the
// runtime before every other mount, then renumbered by the child) among the others, each once.
func TestMountsInSpecOrder(t *testing.T) {
	needRoot(t)
	leakCheck(t, "order1")
	r := newTestRuntime(t)
	bundle, spec := busyboxBundle(t)
	src := t.TempDir()
	spec.Mounts = []specs.Mount{
		{Destination: "/m1", Type: "tmpfs", Source: "tmpfs"},
		{Destination: "/m2", Type: "bind", Source: src, Options: []string{"rbind", "ro"}},
		{Destination: "/m3", Type: "tmpfs", Source: "tmpfs"},
		{Destination: "/m4", Type: "bind", Source: src, Options: []string{"rbind", "ro"}},
	}
	spec.Process.Args = []string{"/bin/sh", "-c", `cut -d' ' -f5 /proc/self/mountinfo | grep '^/m[0-9]$'`}
	code, out, errOut := run(t, r, "order1", bundle, spec)
	if got := strings.Fields(out); code != 0 || strings.Join(got, " ") != "/m1 /m2 /m3 /m4" {
		t.Fatalf("exit %d, mount points %q (stderr %q), want /m1 /m2 /m3 /m4", code, got, errOut)
	}
}

// TestConsoleSocket: with process.terminal the pty master reaches the console socket (runc's
// protocol) and the process runs on the pty slave.
func TestConsoleSocket(t *testing.T) {
	needRoot(t)
	leakCheck(t, "tty1")
	r := newTestRuntime(t)
	bundle, spec := busyboxBundle(t)
	sock, got := consoleListener(t)
	spec.Process.Terminal = true
	spec.Process.Args = []string{"/bin/sh", "-c", "test -t 0 && test -t 1 && echo on-a-tty"}
	c, err := r.Create("tty1", bundle, spec, IO{ConsoleSocket: sock})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Delete(true)
	var master *os.File
	select {
	case master = <-got:
	case <-time.After(5 * time.Second):
	}
	if master == nil {
		t.Fatal("no pty master received")
	}
	defer master.Close()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256)
	master.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _ := master.Read(buf)
	if code, _ := c.Wait(); code != 0 || !strings.Contains(string(buf[:n]), "on-a-tty") {
		t.Fatalf("exit %d, pty output %q", code, buf[:n])
	}
}

// TestExecConsole: an exec'd process with a terminal gets its own pty through the socket.
func TestExecConsole(t *testing.T) {
	needRoot(t)
	leakCheck(t, "tty2")
	r := newTestRuntime(t)
	bundle, spec := busyboxBundle(t)
	c := startSleeper(t, r, "tty2", bundle, spec)
	sock, got := consoleListener(t)
	p, err := c.Exec(&specs.Process{Terminal: true, Args: []string{"/bin/sh", "-c", "test -t 0 && echo exec-on-a-tty"}, Env: []string{"PATH=/bin"}, Cwd: "/"}, IO{ConsoleSocket: sock})
	if err != nil {
		t.Fatal(err)
	}
	master := <-got
	if master == nil {
		t.Fatal("no pty master")
	}
	defer master.Close()
	buf := make([]byte, 256)
	master.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _ := master.Read(buf)
	if code, _ := p.Wait(); code != 0 || !strings.Contains(string(buf[:n]), "exec-on-a-tty") {
		t.Fatalf("exit %d, pty output %q", code, buf[:n])
	}
}

// consoleListener listens on a console socket and yields each pty master it receives.
func consoleListener(t *testing.T) (string, chan *os.File) {
	sock := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	got := make(chan *os.File, 4)
	go func() {
		for {
			c, err := l.AcceptUnix()
			if err != nil {
				return
			}
			buf, oob := make([]byte, 64), make([]byte, unix.CmsgSpace(4))
			_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
			c.Close()
			var fds []int
			if cmsgs, perr := unix.ParseSocketControlMessage(oob[:oobn]); perr == nil && len(cmsgs) == 1 {
				fds, _ = unix.ParseUnixRights(&cmsgs[0])
			}
			if err != nil || len(fds) != 1 {
				got <- nil
				continue
			}
			got <- os.NewFile(uintptr(fds[0]), "pty-master")
		}
	}()
	return sock, got
}

// TestStartAfterInitDied: Start must fail cleanly, not hang, when init is gone.
func TestStartAfterInitDied(t *testing.T) {
	needRoot(t)
	leakCheck(t, "dead1")
	r := newTestRuntime(t)
	bundle, spec := busyboxBundle(t)
	c, err := r.Create("dead1", bundle, spec, IO{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Delete(true)
	st, _ := c.State()
	unix.Kill(st.Pid, unix.SIGKILL)
	c.Wait()
	if err := c.Start(); err == nil {
		t.Fatal("start of a dead container succeeded")
	}
	if s, _ := c.State(); s.Status != specs.ContainerState(StatusStopped) {
		t.Fatalf("status %s", s.Status)
	}
}

// TestExecAsUser: an exec'd process as a non-root user in a created container.
func TestExecAsUser(t *testing.T) {
	needRoot(t)
	leakCheck(t, "user1")
	r := newTestRuntime(t)
	bundle, spec := busyboxBundle(t)
	spec.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10}}
	c := startSleeper(t, r, "user1", bundle, spec)
	outR, outW, _ := os.Pipe()
	p, err := c.Exec(&specs.Process{Args: []string{"/bin/id"}, Env: []string{"PATH=/bin"}, Cwd: "/tmp", User: specs.User{UID: 123, GID: 456}}, IO{Stdout: outW})
	outW.Close()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256)
	n, _ := outR.Read(buf)
	if code, err := p.Wait(); code != 0 || err != nil || !strings.Contains(string(buf[:n]), "uid=123 gid=456") {
		t.Fatalf("exit %d %v, output %q", code, err, buf[:n])
	}
	if _, err := c.Exec(&specs.Process{Args: []string{"/bin/true"}, Cwd: "/", User: specs.User{UID: 1 << 20}}, IO{}); err == nil {
		t.Fatal("exec with an unmapped uid succeeded")
	}
}

// TestSysctlNamespaced: a namespaced sysctl is written in the container's own namespace only.
func TestSysctlNamespaced(t *testing.T) {
	needRoot(t)
	leakCheck(t, "sysctl1")
	r := newTestRuntime(t)
	bundle, spec := busyboxBundle(t)
	host, _ := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	spec.Linux.Sysctl = map[string]string{"net.ipv4.ip_unprivileged_port_start": "0"}
	spec.Process.Args = []string{"/bin/cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"}
	code, out, errOut := run(t, r, "sysctl1", bundle, spec)
	if code != 0 || strings.TrimSpace(out) != "0" {
		t.Fatalf("exit %d, out %q, err %q", code, out, errOut)
	}
	if after, _ := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start"); string(after) != string(host) {
		t.Fatalf("host sysctl changed: %q → %q", host, after)
	}
}

// TestHostRootAsRootfsRefused: a bundle whose rootfs is the host's "/" never starts.
func TestHostRootAsRootfsRefused(t *testing.T) {
	needRoot(t)
	r := newTestRuntime(t)
	bundle, spec := busyboxBundle(t)
	spec.Root.Path = "/"
	if _, err := r.Create("hostroot", bundle, spec, IO{}); err == nil {
		t.Fatal("host root accepted as rootfs")
	}
	link := filepath.Join(bundle, "hostlink")
	if err := os.Symlink("/", link); err != nil {
		t.Fatal(err)
	}
	spec.Root.Path = "hostlink"
	if _, err := r.Create("hostroot", bundle, spec, IO{}); err == nil {
		t.Fatal("symlink to host root accepted as rootfs")
	}
}

// TestCgroupsPath: a cgroupfs-style linux.cgroupsPath is honoured and removed on delete; an
// existing cgroup is never adopted.
func TestCgroupsPath(t *testing.T) {
	needRoot(t)
	leakCheck(t, "cgp1")
	r := newTestRuntime(t)
	bundle, spec := busyboxBundle(t)
	spec.Linux.CgroupsPath = "/bulwark-core-test/cgp1"
	// Parents of a cgroupsPath are made as needed and, like runc, left for their owner.
	t.Cleanup(func() {
		parents, _ := filepath.Glob("/sys/fs/cgroup/*/bulwark-core-test")
		for _, p := range parents {
			os.Remove(p)
		}
	})
	spec.Process.Args = []string{"/bin/sh", "-c", "cat /proc/self/cgroup"}
	code, out, errOut := run(t, r, "cgp1", bundle, spec)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	if m, _ := filepath.Glob("/sys/fs/cgroup/*/bulwark-core-test/cgp1"); len(m) != 0 {
		t.Fatalf("cgroup left: %v", m)
	}
	spec.Linux.CgroupsPath = "/../escape"
	if _, err := r.Create("cgp2", bundle, spec, IO{}); err == nil {
		t.Fatal("cgroupsPath with .. accepted")
	}
}
