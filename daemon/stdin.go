package daemon

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/errdefs"
)

// Standard input (docker run -i, docker attach): a container created with OpenStdin and no
// terminal reads a pipe whose write end the daemon holds; its read end goes to the supervisor
// with the plan. The pipe is made by whichever comes first, the start or an attach with stdin
// (docker run -i attaches before it starts), and closed — the container reads EOF — when an
// attached client of a StdinOnce container (docker run -i) closes its sending side or leaves,
// when the container exits, or with the daemon. A container with a terminal keeps it in the
// supervisor: its input goes there through the engine's attachment.

type stdinPipe struct {
	r *os.File // the container's end, until its start takes it
	w *os.File
}

type stdins struct {
	mu sync.Mutex // guards m
	m  map[string]*stdinPipe
}

// pipe returns container id's stdin pipe, made on first use.
func (x *stdins) pipe(id string) (*stdinPipe, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if p, ok := x.m[id]; ok {
		return p, nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	if x.m == nil {
		x.m = map[string]*stdinPipe{}
	}
	p := &stdinPipe{r: r, w: w}
	x.m[id] = p
	return p, nil
}

// take hands the container's end of its stdin pipe to its start (which closes it once the
// supervisor has it).
func (x *stdins) take(id string) (*os.File, error) {
	p, err := x.pipe(id)
	if err != nil {
		return nil, err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	r := p.r
	p.r = nil
	if p.w == nil {
		delete(x.m, id) // its input was all sent before it started
	}
	return r, nil
}

// writer returns the daemon's end of a started container's stdin, or false when it has none
// (closed, or the container was started by another daemon).
func (x *stdins) writer(id string) (*os.File, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	p, ok := x.m[id]
	if !ok || p.w == nil {
		return nil, false
	}
	return p.w, true
}

// end closes the daemon's end of container id's stdin: the container reads what was sent, then
// EOF (a container not started yet gets the pipe's other end still).
func (x *stdins) end(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	p, ok := x.m[id]
	if !ok || p.w == nil {
		return
	}
	p.w.Close()
	p.w = nil
	if p.r == nil {
		delete(x.m, id)
	}
}

// forget closes both ends of container id's stdin (it exited or is removed).
func (x *stdins) forget(id string) {
	x.mu.Lock()
	p, ok := x.m[id]
	delete(x.m, id)
	x.mu.Unlock()
	if !ok {
		return
	}
	for _, f := range []*os.File{p.r, p.w} {
		if f != nil {
			f.Close()
		}
	}
}

// stdinOf is where an attached client's input goes for rec: its stdin pipe (made now when rec
// has not started), or an error when it has none.
func (s *Server) stdinOf(rec *record) (*os.File, error) {
	if !rec.Config.OpenStdin {
		return nil, errdefs.Errorf(errdefs.ErrConflict, "container %s was not created with an open stdin (-i)", rec.Name)
	}
	if !rec.Started {
		p, err := s.stdins.pipe(rec.ID)
		if err != nil {
			return nil, err
		}
		return p.w, nil
	}
	w, ok := s.stdins.writer(rec.ID)
	if !ok {
		return nil, errdefs.Errorf(errdefs.ErrConflict, "the stdin of container %s is closed", rec.Name)
	}
	return w, nil
}

// pumpStdin copies an attached client's input into the container's stdin; a StdinOnce
// container's stdin is closed when the client stops sending (half-close) or leaves. It returns
// once the client's input has ended.
func (s *Server) pumpStdin(rec *record, in io.Reader, stdin *os.File) {
	io.Copy(stdin, in)
	if rec.Config.StdinOnce {
		s.stdins.end(rec.ID)
	}
}

// attachTerminal connects an attached client to the terminal of rec (run -it, attach): its
// input into the terminal, the terminal's output to it, until the container exits (or the
// client leaves: the container runs on). A container not started yet is waited for.
func (s *Server) attachTerminal(ctx context.Context, rec *record, conn net.Conn, brw *bufio.ReadWriter) error {
	for !rec.Started {
		select {
		case <-ctx.Done():
			return nil
		case <-s.watch.get(rec.ID).exited:
			return nil
		case <-time.After(pollInterval / 2):
		}
		r, ok := s.recs.get(rec.ID)
		if !ok {
			return nil
		}
		rec = r
	}
	a, err := s.eng.Attach(rec.ID)
	if errors.Is(err, engine.ErrNotAttachable) {
		return nil // it has exited
	}
	if err != nil {
		return err
	}
	defer a.Close()
	// The client's input ends when it stops sending (the terminal stays the container's) or
	// leaves (then its output has nowhere to go and the copy below ends: detached).
	go io.Copy(a, brw)
	_, _, err = a.Copy(conn)
	return err
}
