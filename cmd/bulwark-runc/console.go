package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// consoleProxy serves `run`/`exec` in the foreground with a terminal and no --console-socket: like runc,
// it listens on a private console socket, receives the pty master the sandbox sends over it, and
// copies between that master and our own stdio (in raw mode when stdin is a terminal).
type consoleProxy struct {
	dir     string
	ln      *net.UnixListener
	master  chan *os.File
	errc    chan error
	outDone chan struct{} // closed when the pty's output has been copied out

	mu       sync.Mutex // guards pty
	pty      *os.File
	oldState *term.State
}

func newConsoleProxy() (*consoleProxy, error) {
	dir, err := os.MkdirTemp("", "bulwark-runc-console-")
	if err != nil {
		return nil, fmt.Errorf("console socket dir: %w", err)
	}
	path := filepath.Join(dir, "console.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("listen on console socket: %w", err)
	}
	p := &consoleProxy{dir: dir, ln: ln, master: make(chan *os.File, 1), errc: make(chan error, 1),
		outDone: make(chan struct{})}
	go p.accept()
	return p, nil
}

// Path is the socket to hand to the sandbox as IO.ConsoleSocket.
func (p *consoleProxy) Path() string { return filepath.Join(p.dir, "console.sock") }

func (p *consoleProxy) accept() {
	conn, err := p.ln.AcceptUnix()
	if err != nil {
		p.errc <- fmt.Errorf("accept console connection: %w", err)
		return
	}
	defer conn.Close()
	f, err := recvFd(conn)
	if err != nil {
		p.errc <- err
		return
	}
	p.master <- f
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

// Attach waits for the pty master and starts copying. Call it after the sandbox's Create returned.
func (p *consoleProxy) Attach() error {
	var master *os.File
	select {
	case master = <-p.master:
	case err := <-p.errc:
		return err
	}
	p.mu.Lock()
	p.pty = master
	p.mu.Unlock()
	if term.IsTerminal(int(os.Stdin.Fd())) {
		st, err := term.MakeRaw(int(os.Stdin.Fd()))
		if err != nil {
			return fmt.Errorf("set terminal raw mode: %w", err)
		}
		p.oldState = st
		p.Resize()
	}
	go func() { _, _ = io.Copy(master, os.Stdin) }()
	go func() {
		_, _ = io.Copy(os.Stdout, master)
		close(p.outDone)
	}()
	return nil
}

// Resize copies our terminal's window size to the pty (on SIGWINCH).
func (p *consoleProxy) Resize() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pty == nil {
		return
	}
	ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return
	}
	_ = unix.IoctlSetWinsize(int(p.pty.Fd()), unix.TIOCSWINSZ, ws)
}

// Close waits briefly for the last output (the master reads EIO once every slave is closed), restores
// the terminal and removes the socket.
func (p *consoleProxy) Close() error {
	p.mu.Lock()
	attached := p.pty != nil
	p.mu.Unlock()
	if attached {
		select {
		case <-p.outDone:
		case <-time.After(2 * time.Second):
		}
	}
	var errs []error
	if p.oldState != nil {
		errs = append(errs, term.Restore(int(os.Stdin.Fd()), p.oldState))
	}
	errs = append(errs, p.ln.Close(), os.RemoveAll(p.dir))
	return errors.Join(errs...)
}
