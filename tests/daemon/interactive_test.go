package daemon

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Standard input and terminals through the daemon: docker run -i (stdin over the hijacked
// stream, its half-close ending the container's stdin), docker exec -it and docker run -it on a
// real terminal (the docker CLI insists on one), window sizes from the client's terminal.
func TestInteractive(t *testing.T) {
	e := startDaemon(t, nil)
	a := e.alice

	cmd := e.command(a, "docker", "run", "-i", "--rm", "busybox:1", "cat")
	cmd.Stdin = strings.NewReader("hi\n")
	if out, err := cmd.Output(); err != nil || string(out) != "hi\n" {
		t.Errorf("echo hi | docker run -i busybox:1 cat: %q %v", out, err)
	}
	// The client's half-close is the container's EOF; its exit status comes back.
	cmd = e.command(a, "docker", "run", "-i", "--rm", "busybox:1", "sh", "-c", "read x; echo got-$x; read y || echo eof; exit 3")
	cmd.Stdin = strings.NewReader("abc\n")
	out, err := cmd.Output()
	var ee *exec.ExitError
	if string(out) != "got-abc\neof\n" || !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("run -i read/EOF: %q %v", out, err)
	}
	// Without -i the container's stdin is empty, as with docker.
	cmd = e.command(a, "docker", "run", "--rm", "busybox:1", "sh", "-c", "cat; echo done")
	cmd.Stdin = strings.NewReader("not for it\n")
	if out, err := cmd.Output(); err != nil || string(out) != "done\n" {
		t.Errorf("run without -i: %q %v", out, err)
	}

	e.mustDocker(t, a, "run", "-d", "--name", "box", "busybox:1", "sleep", "300")
	// exec -it: a terminal of its own, sized as the client's, its exit status.
	term := e.onTerminal(t, a, 30, 100, "exec", "-it", "box", "sh", "-c", "tty; stty size; exit 5")
	if out, code := term.wait(t); code != 5 || !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "30 100") {
		t.Errorf("exec -it: exit %d, output %q", code, out)
	}
	// Keys typed reach it; a resize of the client's terminal reaches it too.
	term = e.onTerminal(t, a, 24, 80, "exec", "-it", "box", "sh")
	term.expect(t, "# ")
	term.resize(40, 120)
	term.send(t, "stty size; echo typed-$((6*7))\n")
	term.expect(t, "typed-42")
	term.send(t, "exit 6\n")
	if out, code := term.wait(t); code != 6 || !strings.Contains(out, "40 120") {
		t.Errorf("exec -it typed: exit %d, output %q", code, out)
	}
	// run -it: the container's own terminal, input through the attachment.
	term = e.onTerminal(t, a, 24, 80, "run", "-it", "--rm", "busybox:1", "sh", "-c", "read x; echo got-$x; stty size; exit 4")
	term.send(t, "xyz\n")
	if out, code := term.wait(t); code != 4 || !strings.Contains(out, "got-xyz") || !strings.Contains(out, "24 80") {
		t.Errorf("run -it: exit %d, output %q", code, out)
	}
	// A detached container with an open stdin takes input from each docker attach.
	e.mustDocker(t, a, "run", "-d", "-i", "--name", "reader", "busybox:1", "sh", "-c", "while read l; do echo line-$l; done")
	cmd = e.command(a, "docker", "attach", "reader")
	cmd.Stdin = strings.NewReader("one\n")
	var attachOut syncBuffer
	cmd.Stdout = &attachOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 600 && !strings.Contains(attachOut.String(), "line-one"); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if !strings.Contains(attachOut.String(), "line-one") {
		t.Errorf("attach to run -d -i: %q", attachOut.String())
	}
	if logs := waitLogs(t, e, a, "reader", "line-one"); !strings.Contains(logs, "line-one") {
		t.Errorf("reader's logs: %q", logs)
	}
	// Bob's exec into alice's box by id is answered as an unknown container.
	id := strings.TrimSpace(e.mustDocker(t, a, "inspect", "-f", "{{.Id}}", "box"))
	if _, err := e.docker(t, e.bob, "exec", id, "true"); err == nil || !strings.Contains(err.Error(), "No such container") {
		t.Errorf("bob's exec into alice's box: %v", err)
	}
	e.mustDocker(t, a, "rm", "-f", "box", "reader")
}

// terminal is a docker command on a pty of the test's.
type terminal struct {
	cmd    *exec.Cmd
	master *os.File
	out    syncBuffer
	done   chan struct{}
}

// onTerminal runs the docker CLI as tn on a new terminal of rows x cols.
func (e *daemonEnv) onTerminal(t *testing.T, tn tenant, rows, cols uint16, args ...string) *terminal {
	t.Helper()
	master, slave, err := openPTY(rows, cols)
	if err != nil {
		t.Fatal(err)
	}
	defer slave.Close()
	if err := slave.Chown(tn.uid, tn.gid); err != nil {
		t.Fatal(err)
	}
	term := &terminal{cmd: e.command(tn, "docker", args...), master: master, done: make(chan struct{})}
	term.cmd.Stdin, term.cmd.Stdout, term.cmd.Stderr = slave, slave, slave
	term.cmd.SysProcAttr.Setsid, term.cmd.SysProcAttr.Setctty = true, true
	if err := term.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(term.done)
		io.Copy(&term.out, master) // EIO once the CLI has exited
	}()
	t.Cleanup(func() {
		term.cmd.Process.Kill()
		term.cmd.Wait()
		master.Close()
	})
	return term
}

func (term *terminal) send(t *testing.T, s string) {
	t.Helper()
	if _, err := term.master.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// expect waits until the output holds s (a minute at most: a test failure, not a timing).
func (term *terminal) expect(t *testing.T, s string) {
	t.Helper()
	for i := 0; i < 1200; i++ {
		if strings.Contains(term.out.String(), s) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("terminal never showed %q: %q", s, term.out.String())
}

func (term *terminal) resize(rows, cols uint16) {
	unix.IoctlSetWinsize(int(term.master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
}

// wait returns the output and the CLI's exit status.
func (term *terminal) wait(t *testing.T) (string, int) {
	t.Helper()
	waited := make(chan error, 1)
	go func() { waited <- term.cmd.Wait() }()
	select {
	case <-waited:
	case <-time.After(2 * time.Minute):
		term.cmd.Process.Kill()
		<-waited
		t.Errorf("docker %v did not end: %q", term.cmd.Args[1:], term.out.String())
	}
	select {
	case <-term.done:
	case <-time.After(5 * time.Second):
	}
	return term.out.String(), term.cmd.ProcessState.ExitCode()
}

// openPTY opens a pty pair of rows x cols.
func openPTY(rows, cols uint16) (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("pty number: %w", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
	return m, s, nil
}
