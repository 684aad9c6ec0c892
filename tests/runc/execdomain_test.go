package runc

import (
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

// TestExecJoinsContainerConfinement: a process started with exec can signal the container's
// processes and reach their abstract sockets, as in runc (kill -HUP 1, nginx -s reload, pg_ctl
// stop), and nothing outside the container: not another container's processes (same tenant, so
// the same host uid: only the PID namespace separates them), not a host process, not an abstract
// socket of the host or of another container.
func TestExecJoinsContainerConfinement(t *testing.T) {
	c, leaks := newCLI(t)

	hostSock := "bulwark-host-" + testenv.UniqueID(t)
	hl, err := net.Listen("unix", "@"+hostSock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hl.Close() })
	go func() {
		for {
			conn, err := hl.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	host := exec.Command("sleep", "60")
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Process.Kill(); host.Wait() })

	start := func(script string) string {
		t.Helper()
		bundle := testenv.Bundle(t, testenv.Spec([]string{"/bin/sh", "-c", script}))
		leaks.Dir(bundle)
		id := leaks.Track(testenv.UniqueID(t))
		c.ok("run", "--detach", "--bundle", bundle, id)
		t.Cleanup(func() { c.run("delete", "--force", id) })
		c.waitStatus(id, specs.StateRunning)
		return id
	}
	// Init (pid 1) handles SIGHUP; a child listens on an abstract socket.
	a := start(`trap "echo hup >> /tmp/hup" HUP; /bin/probe unix-listen sock-a & while :; do sleep 0.1; done`)
	b := start(`/bin/probe unix-listen sock-b & while :; do sleep 0.1; done`)
	connect := func(id, name string) string {
		return strings.TrimSpace(c.run("exec", id, "/bin/probe", "unix-connect", name).stdout)
	}
	deadline := time.Now().Add(10 * time.Second)
	for connect(b, "sock-b") != "ok" || connect(a, "sock-a") != "ok" {
		if time.Now().After(deadline) {
			t.Fatalf("exec'd processes cannot reach their own container's abstract sockets: a %q, b %q",
				connect(a, "sock-a"), connect(b, "sock-b"))
		}
		time.Sleep(50 * time.Millisecond)
	}

	if r := c.run("exec", a, "/bin/kill", "-HUP", "1"); r.code != 0 {
		t.Fatalf("exec kill -HUP 1: exit %d, %s", r.code, r.stderr)
	}
	for deadline := time.Now().Add(10 * time.Second); strings.TrimSpace(c.run("exec", a, "/bin/cat", "/tmp/hup").stdout) != "hup"; {
		if time.Now().After(deadline) {
			t.Fatal("init did not receive the SIGHUP sent by an exec'd process")
		}
		time.Sleep(50 * time.Millisecond)
	}

	for _, name := range []string{"sock-b", hostSock} {
		if got := connect(a, name); got == "ok" {
			t.Errorf("an exec'd process reached the abstract socket @%s outside its container", name)
		}
	}
	stB := c.state(b)
	for _, pid := range []int{stB.Pid, host.Process.Pid} {
		c.run("exec", a, "/bin/kill", "-KILL", strconv.Itoa(pid))
	}
	// Every process the exec'd one may signal, as root of the container: not init, not itself.
	c.run("exec", a, "/bin/kill", "-KILL", "-1")
	if err := host.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("host process gone after the container's kill: %v", err)
	}
	if st := c.state(b); st.Status != specs.StateRunning {
		t.Errorf("the other container is %s after the first one's kill -KILL -1", st.Status)
	}
	if got := connect(b, "sock-b"); got != "ok" {
		t.Errorf("the other container's listener is gone after the first one's kill -KILL -1: %q", got)
	}
	if st := c.state(a); st.Status != specs.StateRunning {
		t.Errorf("init of the first container is %s: kill -1 must spare it", st.Status)
	}
}
