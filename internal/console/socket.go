// Package console receives a sandbox's pty master on a private console socket (runc's
// --console-socket protocol, which sandbox.IO.ConsoleSocket speaks) and connects it to the
// caller's terminal: raw mode, window size, copies, and Docker's detach keys. bulwark-runc, the
// bulwark CLI and a detached container's monitor share it.
package console

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Socket is a private console socket that receives one pty master.
type Socket struct {
	dir    string
	ln     *net.UnixListener
	master chan *os.File
	errc   chan error
}

// Listen creates the socket in a private temporary directory.
func Listen() (*Socket, error) {
	dir, err := os.MkdirTemp("", "bulwark-console-")
	if err != nil {
		return nil, fmt.Errorf("console socket dir: %w", err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, "console.sock"), Net: "unix"})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("listen on console socket: %w", err)
	}
	s := &Socket{dir: dir, ln: ln, master: make(chan *os.File, 1), errc: make(chan error, 1)}
	go s.accept()
	return s, nil
}

// Path is the socket to hand to the sandbox as IO.ConsoleSocket.
func (s *Socket) Path() string { return filepath.Join(s.dir, "console.sock") }

func (s *Socket) accept() {
	conn, err := s.ln.AcceptUnix()
	if err != nil {
		s.errc <- fmt.Errorf("accept console connection: %w", err)
		return
	}
	defer conn.Close()
	f, err := recvFd(conn)
	if err != nil {
		s.errc <- err
		return
	}
	s.master <- f
}

// Master waits for the pty master (call it once the sandbox's Create or Exec returned: it has
// been sent by then, or never will be).
func (s *Socket) Master() (*os.File, error) {
	select {
	case m := <-s.master:
		return m, nil
	case err := <-s.errc:
		return nil, err
	case <-time.After(10 * time.Second):
		return nil, fmt.Errorf("no pty master received on %s", s.Path())
	}
}

// Close removes the socket.
func (s *Socket) Close() error {
	err := s.ln.Close()
	if rerr := os.RemoveAll(s.dir); err == nil {
		err = rerr
	}
	return err
}

// recvFd reads one SCM_RIGHTS message carrying the pty master (the sender's message body is the pty
// name, as in runc's utils.SendFd).
func recvFd(conn *net.UnixConn) (*os.File, error) {
	name := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := conn.ReadMsgUnix(name, oob)
	if err != nil {
		return nil, fmt.Errorf("receive pty master: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("receive pty master: bad control message (%v)", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			_ = unix.Close(fd)
		}
		return nil, fmt.Errorf("receive pty master: expected one descriptor (%v)", err)
	}
	unix.CloseOnExec(fds[0])
	return os.NewFile(uintptr(fds[0]), string(name[:n])), nil
}
