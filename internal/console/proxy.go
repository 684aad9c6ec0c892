package console

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// Proxy serves a foreground process with a terminal: it listens on a private console socket,
// receives the pty master the sandbox sends over it, and copies between that master and our own
// stdio (in raw mode when stdin is a terminal), as runc and docker run -t do.
type Proxy struct {
	*Socket
	stdin   bool
	outDone chan struct{} // closed when the pty's output has been copied out

	mu       sync.Mutex // guards pty
	pty      *os.File
	oldState *term.State
}

// NewProxy listens for the master; stdin: copy our stdin into the pty (docker's -i).
func NewProxy(stdin bool) (*Proxy, error) {
	s, err := Listen()
	if err != nil {
		return nil, err
	}
	return &Proxy{Socket: s, stdin: stdin, outDone: make(chan struct{})}, nil
}

// Attach waits for the pty master and starts copying. Call it after the sandbox's Create returned.
func (p *Proxy) Attach() error {
	master, err := p.Master()
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.pty = master
	p.mu.Unlock()
	if term.IsTerminal(int(os.Stdin.Fd())) {
		if p.stdin {
			st, err := term.MakeRaw(int(os.Stdin.Fd()))
			if err != nil {
				return fmt.Errorf("set terminal raw mode: %w", err)
			}
			p.oldState = st
		}
		p.Resize()
	}
	if p.stdin {
		go func() { _, _ = io.Copy(master, os.Stdin) }()
	}
	go func() {
		_, _ = io.Copy(os.Stdout, master)
		close(p.outDone)
	}()
	return nil
}

// Resize copies our terminal's window size to the pty (on SIGWINCH).
func (p *Proxy) Resize() {
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
func (p *Proxy) Close() error {
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
	errs = append(errs, p.Socket.Close())
	return errors.Join(errs...)
}
