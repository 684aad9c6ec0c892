// Package runc drives the built bulwark-runc binary the way containerd's shim and the OCI
// runtime-tools suite do — create/start/state/kill/delete, run, exec, list, ps, pause/resume — against
// busybox-static bundles, and checks that bad input gets a clear error and leaves nothing behind.
package runc

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/sandbox"
	"bulwark.dev/bulwark/tests/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// cli runs bulwark-runc against one state root.
type cli struct {
	t    *testing.T
	bin  string
	root string
	io   string   // directory for the stdio files of commands whose container may outlive them
	env  []string // the persistent state root (policy revision, audit log) in a temp dir, not /var/lib
}

func newCLI(t *testing.T) (*cli, *testenv.Leaks) {
	t.Helper()
	return newCLIAt(t, t.TempDir())
}

// newCLIAt is newCLI with the state root root.
func newCLIAt(t *testing.T, root string) (*cli, *testenv.Leaks) {
	t.Helper()
	testenv.RequireRoot(t)
	c := &cli{t: t, bin: testenv.RuntimeBin(t), root: root, io: t.TempDir()}
	c.env = append(os.Environ(), "BULWARK_STATE_ROOT="+t.TempDir())
	return c, testenv.NewLeaks(t, c.root)
}

// command returns the binary's command line against this state root.
func (c *cli) command(args ...string) *exec.Cmd {
	cmd := exec.Command(c.bin, append([]string{"--root", c.root}, args...)...)
	cmd.Env = c.env
	return cmd
}

// result is one command's outcome.
type result struct {
	code           int
	stdout, stderr string
}

// run executes the binary with stdout/stderr on files, not pipes: a container created by the
// command inherits them and would hold a pipe open after the command exits.
func (c *cli) run(args ...string) result {
	c.t.Helper()
	out, err := os.CreateTemp(c.io, "stdout-")
	if err != nil {
		c.t.Fatal(err)
	}
	defer out.Close()
	errf, err := os.CreateTemp(c.io, "stderr-")
	if err != nil {
		c.t.Fatal(err)
	}
	defer errf.Close()
	cmd := c.command(args...)
	cmd.Stdout, cmd.Stderr = out, errf
	err = cmd.Run()
	r := result{}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			c.t.Fatalf("bulwark-runc %v: %v", args, err)
		}
		r.code = ee.ExitCode()
	}
	o, _ := os.ReadFile(out.Name())
	e, _ := os.ReadFile(errf.Name())
	r.stdout, r.stderr = string(o), string(e)
	return r
}

// ok runs a command that must succeed.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 0 {
		c.t.Fatalf("bulwark-runc %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// state returns the state of the container args ends with (global flags such as --tenant first).
func (c *cli) state(args ...string) sandbox.State {
	c.t.Helper()
	var st sandbox.State
	id := args[len(args)-1]
	out := c.ok(append(args[:len(args)-1:len(args)-1], "state", id)...)
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		c.t.Fatalf("state %s is not JSON: %v\n%s", id, err, out)
	}
	return st
}

// waitStatus polls state (with the global flags given, such as --tenant) until the container
// reaches want.
func (c *cli) waitStatus(id string, want specs.ContainerState, global ...string) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := c.state(append(global, id)...)
		if st.Status == want {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("container %s is %s, want %s", id, st.Status, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func sleeper() *specs.Spec { return testenv.Spec([]string{"/bin/sleep", "60"}) }

func TestLifecycle(t *testing.T) {
	c, leaks := newCLI(t)
	bundle := testenv.Bundle(t, sleeper())
	leaks.Dir(bundle)
	id := leaks.Track(testenv.UniqueID(t))
	pidFile := filepath.Join(t.TempDir(), "init.pid")

	c.ok("create", "--bundle", bundle, "--pid-file", pidFile, id)
	t.Cleanup(func() { c.run("delete", "--force", id) })
	st := c.state(id)
	if st.Status != specs.StateCreated || st.ID != id || st.Bundle != bundle || st.Pid <= 0 {
		t.Fatalf("after create: %+v", st)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(st.Pid) {
		t.Fatalf("pid file %q (%v), state pid %d", b, err, st.Pid)
	}
	if r := c.run("create", "--bundle", bundle, id); r.code != 1 || !strings.Contains(r.stderr, "already") {
		t.Errorf("create with an id in use: exit %d, stderr %q", r.code, r.stderr)
	}

	// As with runc, a created container (init waiting for start) can be exec'd into.
	if out := c.ok("exec", id, "/bin/echo", "created"); strings.TrimSpace(out) != "created" {
		t.Errorf("exec in a created container = %q", out)
	}

	c.ok("start", id)
	c.waitStatus(id, specs.StateRunning)
	if r := c.run("start", id); r.code != 1 {
		t.Errorf("start of a running container succeeded: %+v", r)
	}

	// list: table, json and -q agree.
	if out := c.ok("list", "-q"); strings.TrimSpace(out) != id {
		t.Errorf("list -q = %q", out)
	}
	var states []sandbox.State
	if err := json.Unmarshal([]byte(c.ok("list", "--format", "json")), &states); err != nil ||
		len(states) != 1 || states[0].ID != id || states[0].Status != specs.StateRunning {
		t.Errorf("list --format json = %+v (%v)", states, err)
	}
	if out := c.ok("list"); !strings.Contains(out, id) || !strings.Contains(out, "running") {
		t.Errorf("list table:\n%s", out)
	}

	// ps: the init pid is among the container's processes.
	var pids []int
	if err := json.Unmarshal([]byte(c.ok("ps", "--format", "json", id)), &pids); err != nil || !contains(pids, st.Pid) {
		t.Errorf("ps json = %v (%v), want init %d", pids, err, st.Pid)
	}
	if out := c.ok("ps", id); !strings.Contains(out, "PID") || !strings.Contains(out, "sleep") {
		t.Errorf("ps table:\n%s", out)
	}

	// exec: output and exit status pass through; flags after the id belong to the command.
	if out := c.ok("exec", id, "/bin/echo", "-n", "hello"); out != "hello" {
		t.Errorf("exec echo = %q", out)
	}
	if r := c.run("exec", id, "/bin/sh", "-c", "exit 3"); r.code != 3 {
		t.Errorf("exec exit 3: got %d (%s)", r.code, r.stderr)
	}
	if out := c.ok("exec", "--env", "X=y", "--cwd", "/tmp", id, "/bin/sh", "-c", "echo $X $(pwd)"); strings.TrimSpace(out) != "y /tmp" {
		t.Errorf("exec --env --cwd = %q", out)
	}
	if out := c.ok("exec", "--tty", id, "/bin/tty"); !strings.Contains(out, "/dev/pts/") {
		t.Errorf("exec --tty: tty printed %q", out)
	}
	execPid := filepath.Join(t.TempDir(), "exec.pid")
	c.ok("exec", "--detach", "--pid-file", execPid, id, "/bin/sleep", "1")
	if b, err := os.ReadFile(execPid); err != nil || strings.TrimSpace(string(b)) == "" {
		t.Errorf("exec --detach --pid-file: %q, %v", b, err)
	}
	proc := filepath.Join(t.TempDir(), "process.json")
	pj, _ := json.Marshal(specs.Process{Args: []string{"/bin/sh", "-c", "echo from-process-file"}, Cwd: "/",
		Env: []string{"PATH=/bin"}})
	if err := os.WriteFile(proc, pj, 0o600); err != nil {
		t.Fatal(err)
	}
	if out := c.ok("exec", "--process", proc, id); strings.TrimSpace(out) != "from-process-file" {
		t.Errorf("exec --process = %q", out)
	}
	// The exec'd process has the container's confinement: same namespaces as init.
	for _, ns := range []string{"user", "mnt", "pid", "net"} {
		want, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(st.Pid), "ns", ns))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(c.ok("exec", id, "/bin/readlink", "/proc/self/ns/"+ns)); got != want {
			t.Errorf("exec'd process %s namespace %s, init's %s", ns, got, want)
		}
	}

	// pause/resume.
	c.ok("pause", id)
	c.waitStatus(id, specs.ContainerState(sandbox.StatusPaused))
	if r := c.run("exec", id, "/bin/true"); r.code != 1 || !strings.Contains(r.stderr, "paused") {
		t.Errorf("exec in a paused container: %+v", r)
	}
	c.ok("resume", id)
	c.waitStatus(id, specs.StateRunning)

	// delete refuses a running container without --force.
	if r := c.run("delete", id); r.code != 1 {
		t.Errorf("delete of a running container without --force: %+v", r)
	}
	// The sleeping init is pid 1 of its namespace and ignores SIGTERM; KILL by name.
	c.ok("kill", id, "KILL")
	c.waitStatus(id, specs.StateStopped)
	c.ok("delete", id)
	if r := c.run("state", id); r.code != 1 || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("state after delete: %+v", r)
	}
	if out := c.ok("list", "-q"); out != "" {
		t.Errorf("list after delete: %q", out)
	}
	c.ok("delete", "--force", id) // runc: --force on a missing container succeeds
}

func TestRunExitStatus(t *testing.T) {
	c, leaks := newCLI(t)
	bundle := testenv.Bundle(t, testenv.Spec([]string{"/bin/sh", "-c", "echo out; echo err >&2; exit 7"}))
	leaks.Dir(bundle)
	id := leaks.Track(testenv.UniqueID(t))
	r := c.run("run", "--bundle", bundle, id)
	if r.code != 7 || r.stdout != "out\n" || !strings.Contains(r.stderr, "err") {
		t.Fatalf("run: %+v", r)
	}
	// Foreground run deletes the container afterwards.
	if out := c.ok("list", "-q"); out != "" {
		t.Errorf("list after run: %q", out)
	}
}

// TestCommandFailureStatus: a command that cannot be found fails create with runc's wording, which
// Docker maps to 127 (it gave 125 before); an execve refused after start (E2BIG: one argument over
// the kernel's 128 KiB) exits 126, "cannot execute", where it exited 127, "not found".
func TestCommandFailureStatus(t *testing.T) {
	c, leaks := newCLI(t)
	bundle := testenv.Bundle(t, testenv.Spec([]string{"nosuchcommand"}))
	leaks.Dir(bundle)
	r := c.run("run", "--bundle", bundle, leaks.Track(testenv.UniqueID(t)))
	if r.code != 1 || !strings.Contains(r.stderr, "nosuchcommand") || !strings.Contains(r.stderr, "executable file not found in $PATH") {
		t.Errorf("missing command: %+v", r)
	}
	big := testenv.Bundle(t, testenv.Spec([]string{"/bin/true", strings.Repeat("x", 200<<10)}))
	leaks.Dir(big)
	r = c.run("run", "--bundle", big, leaks.Track(testenv.UniqueID(t)))
	if r.code != 126 || !strings.Contains(r.stderr, "argument list too long") {
		t.Errorf("E2BIG: exit %d, stderr %q; want 126", r.code, r.stderr)
	}
}

func TestRunDetachAndKillAll(t *testing.T) {
	c, leaks := newCLI(t)
	// busybox sh execs the last command in place: two processes, both to be killed.
	bundle := testenv.Bundle(t, testenv.Spec([]string{"/bin/sh", "-c", "sleep 60 & sleep 60"}))
	leaks.Dir(bundle)
	id := leaks.Track(testenv.UniqueID(t))
	c.ok("run", "--detach", "--bundle", bundle, id)
	t.Cleanup(func() { c.run("delete", "--force", id) })
	c.waitStatus(id, specs.StateRunning)
	deadline := time.Now().Add(5 * time.Second)
	for {
		var pids []int
		_ = json.Unmarshal([]byte(c.ok("ps", "--format", "json", id)), &pids)
		if len(pids) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("container has %d processes, want 2", len(pids))
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.ok("kill", "--all", id, "9")
	c.waitStatus(id, specs.StateStopped)
	c.ok("delete", id)
}

// TestBadInput: each bad request fails with exit 1 and a message naming the problem, and leaves no
// state directory, cgroup, mount or process behind (checked by Leaks at the end of each subtest).
func TestBadInput(t *testing.T) {
	testenv.RequireRoot(t)
	// Followed on the host, /escape/<name> would create /<name> there.
	escapeName := testenv.UniqueID(t)
	t.Cleanup(func() {
		if _, err := os.Lstat("/" + escapeName); err == nil {
			t.Errorf("a mount target was created on the host: /%s", escapeName)
			os.Remove("/" + escapeName)
		}
	})
	cases := []struct {
		name   string
		bundle func(t *testing.T) string
		id     string
		want   string
	}{
		{"malformed config", func(t *testing.T) string {
			b := testenv.Bundle(t, sleeper())
			writeFile(t, filepath.Join(b, "config.json"), `{"ociVersion": "1.0.2", "process": {`)
			return b
		}, "", "parse"},
		{"missing rootfs", func(t *testing.T) string {
			b := testenv.Bundle(t, sleeper())
			if err := os.RemoveAll(filepath.Join(b, "rootfs")); err != nil {
				t.Fatal(err)
			}
			return b
		}, "", "rootfs"},
		{"no config", func(t *testing.T) string { return t.TempDir() }, "", "config.json"},
		{"hostile mount destination", func(t *testing.T) string {
			return testenv.Bundle(t, testenv.Spec([]string{"/bin/true"}, testenv.WithMount(specs.Mount{
				Destination: "../../etc", Type: "tmpfs", Source: "tmpfs"})))
		}, "", "../../etc"},
		{"symlinked mount target", func(t *testing.T) string {
			b := testenv.Bundle(t, testenv.Spec([]string{"/bin/true"}, testenv.WithMount(specs.Mount{
				Destination: "/escape/" + escapeName, Type: "tmpfs", Source: "tmpfs"})))
			// /escape -> / of the host if followed outside the root.
			if err := os.Symlink("/../../../../", filepath.Join(b, "rootfs", "escape")); err != nil {
				t.Fatal(err)
			}
			return b
		}, "", ""},
		{"invalid id", func(t *testing.T) string { return testenv.Bundle(t, sleeper()) }, "../evil", "invalid container id"},
		// A failure inside the container's init reaches the caller whole: layer, step, path, errno.
		{"missing executable", func(t *testing.T) string {
			return testenv.Bundle(t, testenv.Spec([]string{"/no/such/binary"}))
		}, "", "layer"},
		{"forbidden capability", func(t *testing.T) string {
			return testenv.Bundle(t, testenv.Spec([]string{"/bin/true"}, testenv.WithCaps("CAP_SYS_ADMIN")))
		}, "", "CAP_SYS_ADMIN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, leaks := newCLI(t)
			bundle := tc.bundle(t)
			leaks.Dir(bundle)
			id := tc.id
			if id == "" {
				id = leaks.Track(testenv.UniqueID(t))
			}
			r := c.run("create", "--bundle", bundle, id)
			if r.code == 0 {
				c.run("delete", "--force", id)
				if tc.name == "symlinked mount target" {
					// Acceptable only if the mount stayed inside the rootfs: nothing appeared on the host.
					return
				}
				t.Fatalf("create succeeded; want an error mentioning %q", tc.want)
			}
			if tc.name == "missing executable" && (!strings.Contains(r.stderr, "/no/such/binary") || !strings.Contains(r.stderr, "errno")) {
				t.Errorf("init error not reported whole: %q", r.stderr)
			}
			if r.code != 1 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit 1 and a message mentioning %q", r.code, r.stderr, tc.want)
			}
			ents, _ := os.ReadDir(filepath.Join(c.root, "containers"))
			if len(ents) != 0 {
				t.Errorf("state left behind: %v", ents)
			}
		})
	}
}

// TestErrorLogJSON: containerd's shim reads the last error line of --log; it must be a JSON object
// with level "error" and the whole message.
func TestErrorLogJSON(t *testing.T) {
	c, leaks := newCLI(t)
	bundle := testenv.Bundle(t, testenv.Spec([]string{"/bin/true"}, testenv.WithCaps("CAP_SYS_ADMIN")))
	leaks.Dir(bundle)
	id := leaks.Track(testenv.UniqueID(t))
	logPath := filepath.Join(t.TempDir(), "log.json")
	r := c.run("--log", logPath, "--log-format", "json", "create", "--bundle", bundle, id)
	if r.code != 1 {
		t.Fatalf("create with CAP_SYS_ADMIN: %+v", r)
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var last struct{ Level, Msg, Time string }
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatalf("last log line is not JSON: %v\n%s", err, b)
	}
	if last.Level != "error" || !strings.Contains(last.Msg, "CAP_SYS_ADMIN") || last.Time == "" {
		t.Errorf("last log line %+v", last)
	}
	if !strings.Contains(r.stderr, "CAP_SYS_ADMIN") {
		t.Errorf("stderr lacks the error: %q", r.stderr)
	}
}

// TestSpecRuns: the spec bulwark-runc writes runs as is (made non-interactive) and the floor raises
// nothing in it but the seccomp profile.
func TestSpecRuns(t *testing.T) {
	c, leaks := newCLI(t)
	bundle := testenv.Bundle(t, sleeper())
	leaks.Dir(bundle)
	if err := os.Remove(filepath.Join(bundle, "config.json")); err != nil {
		t.Fatal(err)
	}
	c.ok("spec", "--bundle", bundle)
	if r := c.run("spec", "--bundle", bundle); r.code != 1 || !strings.Contains(r.stderr, "exists") {
		t.Errorf("spec over an existing config.json: %+v", r)
	}
	s := testenv.ReadConfig(t, bundle)
	s.Process.Terminal = false
	s.Process.Args = []string{"/bin/true"}
	testenv.WriteConfig(t, bundle, s)
	id := leaks.Track(testenv.UniqueID(t))
	c.ok("create", "--bundle", bundle, id)
	t.Cleanup(func() { c.run("delete", "--force", id) })
	// The one expected raise: the floor's seccomp profile is never copied into the spec.
	for _, r := range c.state(id).Raises {
		if r.Field != "linux.seccomp" {
			t.Errorf("the floor raised bulwark-runc's own default spec: %+v", r)
		}
	}
	c.ok("delete", "--force", id)
}

func TestFeatures(t *testing.T) {
	c, _ := newCLI(t)
	var f struct {
		OCIVersionMax string `json:"ociVersionMax"`
		Linux         struct {
			Namespaces []string `json:"namespaces"`
		} `json:"linux"`
	}
	if err := json.Unmarshal([]byte(c.ok("features")), &f); err != nil || f.OCIVersionMax != specs.Version ||
		len(f.Linux.Namespaces) == 0 {
		t.Errorf("features: %+v (%v)", f, err)
	}
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRunForwardsSignals: a foreground run relays the signals it receives to the container's init,
// and exits with the status the container then chooses.
func TestRunForwardsSignals(t *testing.T) {
	c, leaks := newCLI(t)
	bundle := testenv.Bundle(t, testenv.Spec([]string{"/bin/sh", "-c",
		`trap "exit 42" TERM; echo ready; while :; do sleep 0.05; done`}))
	leaks.Dir(bundle)
	id := leaks.Track(testenv.UniqueID(t))
	out, err := os.CreateTemp(c.io, "stdout-")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := c.command("run", "--bundle", bundle, id)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.run("delete", "--force", id) })
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(out.Name())
		if strings.Contains(string(b), "ready") {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("container never got ready: %q", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 42 {
		b, _ := os.ReadFile(out.Name())
		t.Fatalf("run after SIGTERM: %v, want exit 42; output %q", err, b)
	}
}

// TestRefusedFlags: runc flags that would lower the floor are refused with the reason, before
// anything is created.
func TestRefusedFlags(t *testing.T) {
	c, leaks := newCLI(t)
	bundle := testenv.Bundle(t, testenv.Spec([]string{"/bin/true"}))
	leaks.Dir(bundle)
	id := leaks.Track(testenv.UniqueID(t))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--systemd-cgroup", "create", "--bundle", bundle, id}, "systemd-cgroup"},
		{[]string{"create", "--no-pivot", "--bundle", bundle, id}, "pivot_root"},
		{[]string{"create", "--preserve-fds", "2", "--bundle", bundle, id}, "host file descriptor"},
		{[]string{"run", "--no-pivot", "--bundle", bundle, id}, "pivot_root"},
	} {
		r := c.run(tc.args...)
		if r.code != 1 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want a refusal mentioning %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	if out := c.ok("list", "-q"); out != "" {
		t.Errorf("a refused command left a container: %q", out)
	}
}
