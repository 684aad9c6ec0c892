package runc

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

func terminalSpec(args ...string) *specs.Spec {
	s := testenv.Spec(args)
	s.Process.Terminal = true
	return s
}

// TestConsoleSocket is containerd's path for a terminal: create --console-socket receives the pty
// master over SCM_RIGHTS, the process's stdio is the pty slave.
func TestConsoleSocket(t *testing.T) {
	c, leaks := newCLI(t)
	bundle := testenv.Bundle(t, terminalSpec("/bin/sh", "-c", "tty; echo done"))
	leaks.Dir(bundle)
	id := leaks.Track(testenv.UniqueID(t))
	sock := filepath.Join(t.TempDir(), "console.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan *os.File, 1)
	go func() {
		conn, err := ln.AcceptUnix()
		if err != nil {
			got <- nil
			return
		}
		defer conn.Close()
		buf, oob := make([]byte, 4096), make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		msgs, perr := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || perr != nil || len(msgs) != 1 {
			got <- nil
			return
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			got <- nil
			return
		}
		got <- os.NewFile(uintptr(fds[0]), "pty-master")
	}()

	c.ok("create", "--bundle", bundle, "--console-socket", sock, id)
	t.Cleanup(func() { c.run("delete", "--force", id) })
	var master *os.File
	select {
	case master = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no pty master received on the console socket")
	}
	if master == nil {
		t.Fatal("console socket message carried no descriptor")
	}
	defer master.Close()
	c.ok("start", id)
	out := readPty(t, master)
	if !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "done") {
		t.Errorf("terminal output %q", out)
	}
	c.waitStatus(id, specs.StateStopped)
	c.ok("delete", id)

	// --console-socket without a terminal is refused, as by runc.
	plain := testenv.Bundle(t, testenv.Spec([]string{"/bin/true"}))
	leaks.Dir(plain)
	id2 := leaks.Track(testenv.UniqueID(t) + "b")
	if r := c.run("create", "--bundle", plain, "--console-socket", sock, id2); r.code != 1 || !strings.Contains(r.stderr, "console socket") {
		t.Errorf("console socket without terminal: %+v", r)
	}
}

// TestRunTerminal: a foreground run with process.terminal and no --console-socket gets a pty the
// CLI serves itself, and exits with the process's status.
func TestRunTerminal(t *testing.T) {
	c, leaks := newCLI(t)
	bundle := testenv.Bundle(t, terminalSpec("/bin/sh", "-c", "tty; exit 4"))
	leaks.Dir(bundle)
	id := leaks.Track(testenv.UniqueID(t))
	r := c.run("run", "--bundle", bundle, id)
	if r.code != 4 || !strings.Contains(r.stdout, "/dev/pts/") {
		t.Errorf("run with a terminal: %+v", r)
	}
	// Detached with a terminal needs a console socket.
	if r := c.run("run", "--detach", "--bundle", bundle, id); r.code != 1 || !strings.Contains(r.stderr, "console socket") {
		t.Errorf("run -d with a terminal and no console socket: %+v", r)
	}
}

// readPty reads the master until the slave side is closed (EIO) or 10 s pass.
func readPty(t *testing.T, master *os.File) string {
	t.Helper()
	var out []byte
	buf := make([]byte, 4096)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_ = master.SetReadDeadline(time.Now().Add(time.Second))
		n, err := master.Read(buf)
		out = append(out, buf[:n]...)
		if errors.Is(err, syscall.EIO) || errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read pty: %v", err)
		}
	}
	return string(out)
}
