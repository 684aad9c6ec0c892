package daemon

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types"
	"github.com/moby/moby/api/types/common"
	"github.com/moby/moby/api/types/container"

	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/errdefs"
	"bulwark.dev/bulwark/sandbox"
)

// An exec is made by one call (its configuration, kept in memory) and run by another, whose
// connection is hijacked for its streams; each is decided by the API policy on the exec's
// container, and the engine decides the process itself under the container's run policy.

type execRecord struct {
	id          string
	containerID string
	cfg         container.ExecCreateRequest

	mu      sync.Mutex // guards the fields below
	started bool
	running bool
	code    *int
	// pty is the master of the exec's terminal while it runs (exec -t); size is the last size
	// asked for (rows, cols), applied when the master arrives.
	pty  *os.File
	size [2]uint16
}

type execs struct {
	mu sync.Mutex // guards m
	m  map[string]*execRecord
}

func (x *execs) add(e *execRecord) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.m == nil {
		x.m = map[string]*execRecord{}
	}
	x.m[e.id] = e
}

func (x *execs) get(id string) (*execRecord, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	e, ok := x.m[id]
	return e, ok
}

// forget drops the execs of a removed container.
func (x *execs) forget(containerID string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for id, e := range x.m {
		if e.containerID == containerID {
			delete(x.m, id)
		}
	}
}

// resolveExec finds an exec's container record (the target the API policy decides on).
func (s *Server) resolveExec(id string) (*execRecord, *record, error) {
	ex, ok := s.execs.get(id)
	if !ok {
		return nil, nil, errNoSuchExec(id)
	}
	rec, ok := s.recs.get(ex.containerID)
	if !ok {
		return nil, nil, errNoSuchExec(id)
	}
	return ex, rec, nil
}

// errNoSuchExec is Docker's answer for an id that names no exec.
func errNoSuchExec(id string) error {
	return errdefs.Errorf(errdefs.ErrNotFound, "No such exec instance: %s", id)
}

func (s *Server) execCreate(w http.ResponseWriter, r *http.Request, c *call) error {
	raw, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	// Clients up to API 1.50 still send Detach here (exec start is where it applies); the
	// Python SDK sends the container again (Container).
	var body struct {
		container.ExecCreateRequest
		Detach    bool
		Container string
	}
	if err := strictDecode(raw, &body); err != nil {
		return err
	}
	req := body.ExecCreateRequest
	switch ref := strings.TrimPrefix(body.Container, "/"); {
	case ref != "" && ref != c.target.Name && !strings.HasPrefix(c.target.ID, ref):
		return statusError(http.StatusBadRequest, "exec: Container %q is not the container of the path", body.Container)
	case len(req.Cmd) == 0:
		return statusError(http.StatusBadRequest, "No exec command specified")
	case req.Privileged:
		return statusError(http.StatusForbidden, "privileged exec: the floor has no privileged mode")
	case req.DetachKeys != "":
		return notImplemented("detach keys")
	}
	for _, e := range req.Env {
		if !strings.Contains(e, "=") {
			return statusError(http.StatusBadRequest, "Env %q: want NAME=VALUE", e)
		}
	}
	if st := s.stateOf(c.target, engineCaller(c, c.target)); st.status != container.StateRunning {
		return errdefs.Errorf(errdefs.ErrConflict, "container %s is not running", c.target.ID)
	}
	ex := &execRecord{id: newContainerID(), containerID: c.target.ID, cfg: req}
	if cs := req.ConsoleSize; cs != nil {
		ex.size = [2]uint16{uint16(cs[0]), uint16(cs[1])}
	}
	s.execs.add(ex)
	writeJSON(w, http.StatusCreated, container.ExecCreateResponse(common.IDResponse{ID: ex.id}))
	return nil
}

func (s *Server) execStart(w http.ResponseWriter, r *http.Request, c *call) error {
	ex, _, err := s.resolveExec(r.PathValue("id"))
	if err != nil {
		return err
	}
	raw, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	var req container.ExecStartRequest
	if len(strings.TrimSpace(string(raw))) > 0 {
		if err := strictDecode(raw, &req); err != nil {
			return err
		}
	}
	if req.Tty != ex.cfg.Tty {
		return statusError(http.StatusBadRequest, "exec start: Tty must be what the exec was created with")
	}
	ex.mu.Lock()
	if ex.started {
		ex.mu.Unlock()
		return errdefs.Errorf(errdefs.ErrConflict, "exec %s has already been started", ex.id)
	}
	ex.started, ex.running = true, true
	ex.mu.Unlock()
	ereq := engine.ExecRequest{Identity: engine.Identity{UID: c.who.UID, GID: c.who.GID, Principal: "bulwarkd"},
		Tenant: c.target.Tenant, Args: ex.cfg.Cmd, Env: ex.cfg.Env, Workdir: ex.cfg.WorkingDir, User: ex.cfg.User, TTY: ex.cfg.Tty}
	ex.mu.Lock()
	ereq.TTYRows, ereq.TTYCols = ex.size[0], ex.size[1]
	ex.mu.Unlock()
	if req.Detach {
		if ex.cfg.Tty {
			return notImplemented("a detached exec with a terminal (exec -d -t)")
		}
		go s.runExec(context.WithoutCancel(r.Context()), ex, ereq, sandbox.IO{}, nil, nil)
		w.WriteHeader(http.StatusOK)
		return nil
	}
	if ex.cfg.Tty {
		conn, brw, err := hijack(w, r, types.MediaTypeRawStream)
		if err != nil {
			return err
		}
		defer conn.Close()
		s.execTerminal(r.Context(), ex, ereq, conn, brw)
		return nil
	}
	conn, brw, err := hijack(w, r, types.MediaTypeMultiplexedStream)
	if err != nil {
		return err
	}
	defer conn.Close()
	var (
		stdio   sandbox.IO
		closers []*os.File
		copiers sync.WaitGroup
	)
	if ex.cfg.AttachStdin {
		pr, pw, err := os.Pipe()
		if err != nil {
			return nil
		}
		stdio.Stdin = pr
		closers = append(closers, pr)
		go func() {
			io.Copy(pw, brw)
			pw.Close()
		}()
	}
	out := &frameWriter{w: conn}
	for _, stream := range []struct {
		on   bool
		kind byte
		dst  **os.File
	}{{ex.cfg.AttachStdout, 1, &stdio.Stdout}, {ex.cfg.AttachStderr, 2, &stdio.Stderr}} {
		if !stream.on {
			continue
		}
		pr, pw, err := os.Pipe()
		if err != nil {
			return nil
		}
		*stream.dst = pw
		closers = append(closers, pw)
		copiers.Add(1)
		go func(kind byte) {
			defer copiers.Done()
			defer pr.Close()
			buf := make([]byte, 32<<10)
			for {
				n, err := pr.Read(buf)
				if n > 0 {
					out.frame(kind, buf[:n])
				}
				if err != nil {
					return
				}
			}
		}(stream.kind)
	}
	// The process runs to its end whatever the client does (as with Docker); a client that
	// leaves closes its stdin.
	s.runExec(context.WithoutCancel(r.Context()), ex, ereq, stdio, closers, func(err error) {
		copiers.Wait()
		out.frame(2, []byte("bulwarkd: "+err.Error()+"\n"))
	})
	copiers.Wait()
	return nil
}

// runExec runs the process and records its exit status; closers are this side's copies of the
// process's stdio, closed once it has exited so that its output reaches EOF. A failure to run it
// goes to report (the client's stderr), with Docker's status for it.
func (s *Server) runExec(ctx context.Context, ex *execRecord, req engine.ExecRequest, stdio sandbox.IO, closers []*os.File, report func(error)) {
	code, err := s.eng.Exec(ctx, ex.containerID, req, stdio)
	for _, f := range closers {
		f.Close()
	}
	if err != nil {
		s.log.Info("exec failed", "container", ex.containerID, "error", err)
		if code < 0 {
			code = engine.ExitStatus(err)
		}
		if report != nil {
			report(err)
		}
	}
	ex.mu.Lock()
	ex.running, ex.code = false, &code
	ex.mu.Unlock()
}

func (s *Server) execInspect(w http.ResponseWriter, r *http.Request, c *call) error {
	ex, _, err := s.resolveExec(r.PathValue("id"))
	if err != nil {
		return err
	}
	ex.mu.Lock()
	defer ex.mu.Unlock()
	writeJSON(w, http.StatusOK, container.ExecInspectResponse{ID: ex.id, Running: ex.running, ExitCode: ex.code,
		ContainerID: ex.containerID, OpenStdin: ex.cfg.AttachStdin, OpenStdout: ex.cfg.AttachStdout, OpenStderr: ex.cfg.AttachStderr,
		ProcessConfig: &container.ExecProcessConfig{Entrypoint: ex.cfg.Cmd[0], Arguments: ex.cfg.Cmd[1:], User: ex.cfg.User}})
	return nil
}

// frameWriter writes Docker's multiplexed frames; it is safe for concurrent use.
type frameWriter struct {
	mu sync.Mutex // serialises frames
	w  io.Writer
}

func (f *frameWriter) frame(kind byte, p []byte) error {
	var hdr [8]byte
	hdr[0] = kind
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(p)))
	f.mu.Lock()
	defer f.mu.Unlock()
	_, err := f.w.Write(append(hdr[:], p...))
	return err
}

// hijack takes over the connection for a stream, answering 101 UPGRADED to a client that asked
// to upgrade (the docker CLI) or 200 otherwise, with the stream's media type.
func hijack(w http.ResponseWriter, r *http.Request, ct string) (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("hijack: %w", err)
	}
	conn.SetDeadline(time.Time{})
	if r.Header.Get("Upgrade") != "" {
		fmt.Fprintf(brw, "HTTP/1.1 101 UPGRADED\r\nContent-Type: %s\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nAPI-Version: %s\r\n\r\n", ct, APIVersion)
	} else {
		fmt.Fprintf(brw, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nAPI-Version: %s\r\n\r\n", ct, APIVersion)
	}
	if err := brw.Flush(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, brw, nil
}
