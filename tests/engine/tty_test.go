package engine

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/tests/internal/clitest"
)

// ptyPair opens a real pseudo-terminal: the test plays the user on the master, the command under
// test gets the slave as its controlling terminal.
func ptyPair(t *testing.T, rows, cols uint16) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	var unlock int32
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, m.Fd(), unix.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatal(e)
	}
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// screen collects what a pty master reads.
type screen struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *screen) read(m *os.File) {
	b := make([]byte, 4096)
	for {
		n, err := m.Read(b)
		s.mu.Lock()
		s.buf.Write(b[:n])
		s.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (s *screen) wait(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		s.mu.Lock()
		got := s.buf.String()
		s.mu.Unlock()
		if strings.Contains(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("terminal never showed %q; it shows %q", want, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// onTerminal starts bulwark with the slave as its controlling terminal and stdio.
func onTerminal(t *testing.T, slave *os.File, root string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(clitest.Bin, append([]string{"--root", root}, args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

func exitCode(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		return cmd.ProcessState.ExitCode()
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("%v did not exit", cmd.Args)
		return -1
	}
}

// TestRunTTY: run -it gives the workload a terminal of the caller's size, resized with it
// (SIGWINCH), with the caller's terminal in raw mode meanwhile and restored after.
func TestRunTTY(t *testing.T) {
	f := newFixture(t)
	master, slave := ptyPair(t, 30, 100)
	before, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	var scr screen
	go scr.read(master)
	cmd := onTerminal(t, slave, f.root, "run", "--rm", "-it", "--name", f.name(t, "tty"), "busybox:1",
		"sh", "-c", "busybox tty; busybox stty size; read x; busybox stty size; echo got:$x; exit 7")
	scr.wait(t, "/dev/pts/0")
	scr.wait(t, "30 100")
	if st, _ := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS); st.Lflag&unix.ICANON != 0 {
		t.Error("the caller's terminal is not in raw mode while attached")
	}
	unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120})
	time.Sleep(300 * time.Millisecond) // SIGWINCH reaches the CLI, which resizes the workload's pty
	master.Write([]byte("hello\r"))
	scr.wait(t, "got:hello")
	scr.wait(t, "40 120")
	if code := exitCode(t, cmd); code != 7 {
		t.Errorf("exit %d, want the workload's 7", code)
	}
	after, _ := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if after.Lflag != before.Lflag || after.Iflag != before.Iflag || after.Oflag != before.Oflag {
		t.Errorf("terminal not restored: lflag %#x → %#x", before.Lflag, after.Lflag)
	}
	f.assertNothingLeft(t)
}

// TestDetachedTTYAttach: run -d -t keeps the terminal in the monitor; attach connects to it,
// the detach keys (ctrl-p ctrl-q, or --detach-keys) leave the container running, and an
// attach that sees the workload exit exits with its status. The log has the terminal's output.
func TestDetachedTTYAttach(t *testing.T) {
	f := newFixture(t)
	id := f.name(t, "dtty")
	clitest.Must(t, f.root, "run", "-d", "-t", "--name", id, "busybox:1",
		"sh", "-c", `busybox stty size; while read l; do echo "in:$l"; done; exit 3`)
	waitFor(t, func() bool { return inspect(t, f, id).Status == "running" })

	master, slave := ptyPair(t, 33, 90)
	var scr screen
	go scr.read(master)
	cmd := onTerminal(t, slave, f.root, "attach", id)
	time.Sleep(300 * time.Millisecond)
	master.Write([]byte("abc\r"))
	scr.wait(t, "in:abc")
	master.Write([]byte{16, 17}) // ctrl-p ctrl-q
	if code := exitCode(t, cmd); code != 0 {
		t.Errorf("attach after the detach keys: exit %d", code)
	}
	if st := inspect(t, f, id).Status; st != "running" {
		t.Fatalf("after detaching the container is %s", st)
	}

	master2, slave2 := ptyPair(t, 33, 90)
	var scr2 screen
	go scr2.read(master2)
	cmd = onTerminal(t, slave2, f.root, "attach", "--detach-keys", "ctrl-a", id)
	time.Sleep(300 * time.Millisecond)
	master2.Write([]byte("\x10\x11def\r")) // not the detach keys now: passed on
	scr2.wait(t, "def")
	master2.Write([]byte{4}) // ctrl-d: end of input, the workload exits 3
	if code := exitCode(t, cmd); code != 3 {
		t.Errorf("attach when the workload exits: exit %d, want 3", code)
	}
	waitFor(t, func() bool { c := inspect(t, f, id); return c.Exit != nil })
	logs := clitest.Run(t, f.root, "logs", id).Stdout
	if !strings.Contains(logs, "in:abc") || !strings.Contains(logs, "def") {
		t.Errorf("logs: %q", logs)
	}
	if r := clitest.Run(t, f.root, "attach", id); r.Code == 0 {
		t.Error("attach to an exited container succeeded")
	}
	if r := clitest.Run(t, f.root, "attach", "--detach-keys", "ctrl-1", id); r.Code == 0 || !strings.Contains(r.Stderr, "unknown key") {
		t.Errorf("bad --detach-keys: exit %d %s", r.Code, r.Stderr)
	}
	clitest.Must(t, f.root, "rm", id)
	f.assertNothingLeft(t)
}
