package daemon

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Operability: socket activation, graceful shutdown and reload, exercised against a real
// bulwarkd with the stock docker CLI.

// term stops the running daemon with SIGTERM and waits for it (without the cleanup's checks:
// the test goes on with the same state root).
func (e *daemonEnv) term(t *testing.T) {
	t.Helper()
	if err := e.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("bulwarkd exited with %v\n%s", err, e.log)
		}
	case <-time.After(2 * time.Minute):
		e.cmd.Process.Kill()
		<-done
		t.Fatalf("bulwarkd did not stop on SIGTERM\n%s", e.log)
	}
}

// bindUnix makes a listening unix socket as a service manager would (mode 0660, the tenants'
// group) and returns it with its descriptor.
func (e *daemonEnv) bindUnix(t *testing.T, name string) (*net.UnixListener, *os.File) {
	t.Helper()
	p := filepath.Join(e.dir, name)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(true)
	t.Cleanup(func() { ln.Close() })
	if err := os.Chown(p, 0, e.group); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o660); err != nil {
		t.Fatal(err)
	}
	f, err := ln.File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return ln, f
}

// startActivated starts bulwarkd as a service manager does: the sockets as descriptors 3, 4,
// ... and LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES naming them. LISTEN_PID must be the
// daemon's own pid, known only once it runs: a shell exports its own pid, then execs bulwarkd
// (same pid).
func (e *daemonEnv) startActivated(t *testing.T, names []string, files []*os.File, env ...string) {
	t.Helper()
	e.cmd = exec.Command("/bin/sh", "-c", `export LISTEN_PID=$$; exec "$0" "$@"`, bulwarkd, "--config", e.cfgPath)
	e.cmd.Env = append(os.Environ(), "LISTEN_FDS="+strconv.Itoa(len(files)), "LISTEN_FDNAMES="+strings.Join(names, ":"))
	e.cmd.Env = append(e.cmd.Env, env...)
	e.cmd.ExtraFiles = files
	e.cmd.Stdout, e.cmd.Stderr = e.log, e.log
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
}

// dockerAt runs the docker CLI as tn against another socket than the configured one.
func (e *daemonEnv) dockerAt(t *testing.T, sock string, tn tenant, args ...string) (string, error) {
	t.Helper()
	saved := e.sock
	e.sock = sock
	defer func() { e.sock = saved }()
	return e.docker(t, tn, args...)
}

// Socket activation (systemd's protocol, tested directly: the machine has no systemd): bulwarkd
// serves on the socket it is passed, never makes the configured one, identifies callers on it
// by SO_PEERCRED as on its own; a request sent while no daemon runs waits in the socket's queue
// and is answered by the next daemon handed the same socket; the passed socket stays when the
// daemon exits (it is the service manager's). The manager is told READY=1 once the daemon
// serves and STOPPING=1 when it stops (Type=notify).
func TestSocketActivation(t *testing.T) {
	e := startDaemon(t, nil)
	e.term(t)
	ln, f := e.bindUnix(t, "activated.sock")
	sock := ln.Addr().String()
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(e.dir, "notify"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()

	e.startActivated(t, []string{"bulwarkd.socket"}, []*os.File{f}, "NOTIFY_SOCKET="+notify.LocalAddr().String())
	out, err := e.dockerAt(t, sock, e.alice, "run", "--rm", "busybox:1", "id", "-u")
	if err != nil || out != "0\n" {
		t.Fatalf("docker run on the activated socket: %q %v\n%s", out, err, e.log)
	}
	if _, err := e.dockerAt(t, sock, e.stranger, "ps"); err == nil || !strings.Contains(err.Error(), "TENANT_UNKNOWN") {
		t.Errorf("a uid in no tenant on the activated socket: %v", err)
	}
	if _, err := os.Stat(e.sock); err == nil {
		t.Errorf("the configured socket %s was made although a socket was passed", e.sock)
	}
	e.term(t)
	var states []string
	notify.SetReadDeadline(time.Now().Add(time.Second)) // both were sent before the daemon exited
	for b := make([]byte, 256); ; {
		n, err := notify.Read(b)
		if err != nil {
			break
		}
		states = append(states, string(b[:n]))
	}
	if strings.Join(states, ",") != "READY=1,STOPPING=1" {
		t.Errorf("notifications to the service manager: %q", states)
	}
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("the passed socket was removed by the daemon: %v", err)
	}

	// No daemon runs: a client's request waits in the socket's queue for the next one.
	type result struct {
		out string
		err error
	}
	res := make(chan result, 1)
	go func() {
		out, err := e.dockerAt(t, sock, e.bob, "version", "--format", "{{.Server.Version}}")
		res <- result{out, err}
	}()
	e.startActivated(t, []string{"bulwarkd.socket"}, []*os.File{f})
	r := <-res
	if r.err != nil || strings.TrimSpace(r.out) == "" {
		t.Fatalf("a request queued while no daemon ran: %q %v\n%s", r.out, r.err, e.log)
	}
	e.term(t)

	// A passed TCP socket is not an API socket: callers are identified by SO_PEERCRED.
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	tf, err := tcp.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer tf.Close()
	e.log.Reset()
	e.startActivated(t, []string{"api"}, []*os.File{tf})
	refused := e.cmd
	timer := time.AfterFunc(2*time.Minute, func() { refused.Process.Kill() })
	if err := refused.Wait(); err == nil || !strings.Contains(e.log.String(), "not a unix socket") {
		t.Errorf("bulwarkd passed a TCP socket as its API socket: %v\n%s", err, e.log)
	}
	timer.Stop()

	// The configured socket again, for the cleanup's checks.
	e.start(t)
}
