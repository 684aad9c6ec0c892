package daemon

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/errdefs"
	"bulwark.dev/bulwark/internal/console"
	"bulwark.dev/bulwark/sandbox"
)

// Terminals: an exec with -t gets a pty of its own, whose master the daemon holds while it
// runs (the hijacked stream is raw: the client's bytes in, the terminal's out); a container
// with -t keeps its pty in the supervisor, and the daemon reaches it through the engine's
// attachment (engine.Attach) for input and window sizes.

// outputDrain bounds how long an exec's terminal output is read after the process exited (a
// process it left behind may hold the terminal open).
const outputDrain = 2 * time.Second

// execTerminal runs ex on a new terminal and connects it to the client's connection until the
// process has exited and its output has been sent.
func (s *Server) execTerminal(ctx context.Context, ex *execRecord, req engine.ExecRequest, conn net.Conn, brw *bufio.ReadWriter) {
	sock, err := console.Listen()
	if err != nil {
		s.runExecFailed(ex, conn, err)
		return
	}
	defer sock.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.runExec(context.WithoutCancel(ctx), ex, req, sandbox.IO{ConsoleSocket: sock.Path()}, nil, func(err error) {
			io.WriteString(conn, "bulwarkd: "+err.Error()+"\r\n")
		})
	}()
	type result struct {
		f   *os.File
		err error
	}
	got := make(chan result, 1)
	go func() {
		f, err := sock.Master()
		got <- result{f, err}
	}()
	var pty *os.File
	select {
	case res := <-got:
		pty = res.f
	case <-done:
		// Ended: with a terminal whose output is still to be read, or failed before it had one
		// (runExec told the client).
		select {
		case res := <-got:
			pty = res.f
		case <-time.After(time.Second):
			return
		}
	}
	if pty == nil {
		<-done
		return
	}
	defer pty.Close()
	ex.mu.Lock()
	ex.pty = pty
	size := ex.size
	ex.mu.Unlock()
	if size != [2]uint16{} {
		setWinsize(pty, size[0], size[1])
	}
	go io.Copy(pty, brw) // the client's keys; a client that leaves does not end the process
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		io.Copy(conn, pty) // ends with EIO once no process holds the terminal
	}()
	<-done
	ex.mu.Lock()
	ex.pty = nil
	ex.mu.Unlock()
	select {
	case <-copied:
	case <-time.After(outputDrain):
	}
}

// runExecFailed records an exec that could not be run and tells its client why.
func (s *Server) runExecFailed(ex *execRecord, conn net.Conn, err error) {
	io.WriteString(conn, "bulwarkd: "+err.Error()+"\r\n")
	code := 126
	ex.mu.Lock()
	ex.running, ex.code = false, &code
	ex.mu.Unlock()
}

func setWinsize(pty *os.File, rows, cols uint16) error {
	return unix.IoctlSetWinsize(int(pty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
}

// resizeParams reads a resize request's h (rows) and w (columns).
func resizeParams(r *http.Request) (rows, cols uint16, err error) {
	h, herr := strconv.ParseUint(r.URL.Query().Get("h"), 10, 16)
	w, werr := strconv.ParseUint(r.URL.Query().Get("w"), 10, 16)
	if herr != nil || werr != nil {
		return 0, 0, statusError(http.StatusBadRequest, "resize: want h and w, the rows and columns")
	}
	return uint16(h), uint16(w), nil
}

// execResize sets the window size of an exec's terminal (kept for it when it has none yet).
func (s *Server) execResize(w http.ResponseWriter, r *http.Request, c *call) error {
	ex, _, err := s.resolveExec(r.PathValue("id"))
	if err != nil {
		return err
	}
	rows, cols, err := resizeParams(r)
	if err != nil {
		return err
	}
	if !ex.cfg.Tty {
		return errdefs.Errorf(errdefs.ErrConflict, "exec %s has no terminal", ex.id)
	}
	ex.mu.Lock()
	defer ex.mu.Unlock()
	ex.size = [2]uint16{rows, cols}
	if ex.pty != nil {
		if err := setWinsize(ex.pty, rows, cols); err != nil {
			return err
		}
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// containerResize sets the window size of a container's terminal, through its attachment.
func (s *Server) containerResize(w http.ResponseWriter, r *http.Request, c *call) error {
	rows, cols, err := resizeParams(r)
	if err != nil {
		return err
	}
	if !c.target.Config.Tty {
		return errdefs.Errorf(errdefs.ErrConflict, "container %s has no terminal", c.target.Name)
	}
	if !c.target.Started {
		// docker run -t asks before the start; the size is in the create request too.
		w.WriteHeader(http.StatusOK)
		return nil
	}
	a, err := s.eng.Attach(c.target.ID)
	if err != nil {
		return errdefs.Errorf(errdefs.ErrConflict, "container %s: %v", c.target.Name, err)
	}
	defer a.Close()
	if err := a.Resize(rows, cols); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
