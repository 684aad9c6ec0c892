package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"

	"bulwark.dev/bulwark/internal/console"
	"bulwark.dev/bulwark/sandbox"
)

// A detached container needs a process that outlives the CLI: it is init's parent (only the
// parent can collect the exit status), it copies the workload's output into the rotating log,
// records the exit and, for --rm, removes the container. SpawnMonitor re-executes the binary as
// that monitor and hands it the decided plan; the monitor (ServeMonitor) calls RunDetached.

// EncodePlan serialises a decided plan for the monitor process, with the bind-source descriptors
// the monitor must inherit, in order (DecodePlan's files; the caller closes its copies once the
// monitor has started). The records of the steps so far are made durable first: the monitor
// continues the request with a trail of its own.
func EncodePlan(p *Plan) ([]byte, []*os.File, error) {
	if err := p.trail.Flush(); err != nil {
		return nil, nil, err
	}
	paths, files, err := p.binds.Export()
	if err != nil {
		return nil, nil, err
	}
	p.BindSources = paths
	b, err := json.Marshal(p)
	if err != nil {
		for _, f := range files {
			f.Close()
		}
		return nil, nil, err
	}
	return b, files, nil
}

// DecodePlan restores a plan in the monitor; its audit trail continues the request's. file(i)
// is the i-th descriptor EncodePlan returned, as the monitor inherited it.
func (e *Engine) DecodePlan(b []byte, file func(i int) *os.File) (*Plan, error) {
	p := &Plan{}
	if err := json.Unmarshal(b, p); err != nil {
		return nil, fmt.Errorf("decode plan: %w", err)
	}
	if p.Request == nil || p.Spec == nil || p.ID == "" || !p.Decision.Allow {
		return nil, errors.New("decode plan: not an allowed plan")
	}
	files := make([]*os.File, len(p.BindSources))
	for i := range files {
		if files[i] = file(i); files[i] == nil {
			return nil, fmt.Errorf("decode plan: bind source %s: descriptor %d not inherited", p.BindSources[i], i)
		}
	}
	binds, err := sandbox.ImportBinds(p.BindSources, files)
	if err != nil {
		return nil, fmt.Errorf("decode plan: %w", err)
	}
	p.binds = binds
	p.trail = newTrail(e.audit, p.Request.Identity, p.Request.Tenant, p.Request.ID)
	p.trail.SetContainer(p.ID)
	p.trail.SetImage(p.Image.Digest)
	return p, nil
}

// RunDetached starts the plan with its output going to the container's log, calls started once
// the workload runs (or creation failed), then waits for it to exit. A workload with a terminal
// writes into its pty, whose output goes to the log (as stdout) and to the clients attached
// through the container's attach socket.
func (e *Engine) RunDetached(p *Plan, started func(*Running, error)) (*ExitInfo, error) {
	if p.Spec.Process.Terminal {
		return e.runDetachedTerminal(p, started)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		started(nil, err)
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		started(nil, err)
		return nil, err
	}
	closeW := func() { outW.Close(); errW.Close() }
	// The log lives in the container's engine directory, which Start creates; write into a
	// pipe until then and open the log once the directory exists.
	r, err := e.Start(context.Background(), p, sandbox.IO{Stdout: outW, Stderr: errW})
	closeW()
	if err != nil {
		outR.Close()
		errR.Close()
		started(nil, err)
		return nil, err
	}
	lw, err := OpenLog(e.LogPath(p.ID), p.Request.LogMaxSize, p.Request.LogMaxFiles)
	if err != nil {
		r.Signal(syscall.SIGKILL)
		r.Wait()
		started(nil, err)
		return nil, err
	}
	defer lw.Close()
	started(r, nil)
	var wg sync.WaitGroup
	for stream, rd := range map[string]*os.File{"stdout": outR, "stderr": errR} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer rd.Close()
			lw.Pump(stream, rd)
		}()
	}
	// The pipes reach EOF when the workload is gone (its PID namespace dies with init): the log
	// is complete before the exit is recorded.
	wg.Wait()
	return r.Wait()
}

// runDetachedTerminal is RunDetached for a workload with a terminal: the monitor holds the pty
// master.
func (e *Engine) runDetachedTerminal(p *Plan, started func(*Running, error)) (*ExitInfo, error) {
	sock, err := console.Listen()
	if err != nil {
		started(nil, err)
		return nil, err
	}
	r, err := e.Start(context.Background(), p, sandbox.IO{ConsoleSocket: sock.Path()})
	if err != nil {
		sock.Close()
		started(nil, err)
		return nil, err
	}
	pty, err := sock.Master()
	sock.Close()
	kill := func(err error) (*ExitInfo, error) {
		r.Signal(syscall.SIGKILL)
		r.Wait()
		started(nil, err)
		return nil, err
	}
	if err != nil {
		return kill(err)
	}
	defer pty.Close()
	lw, err := OpenLog(e.LogPath(p.ID), p.Request.LogMaxSize, p.Request.LogMaxFiles)
	if err != nil {
		return kill(err)
	}
	defer lw.Close()
	srv, err := e.serveAttach(p.ID, pty)
	if err != nil {
		return kill(err)
	}
	started(r, nil)
	// The pty's output, to the log and to the attached clients. The master reads EIO once the
	// last process holding the slave is gone.
	logR, logW := io.Pipe()
	pumped := make(chan struct{})
	go func() {
		lw.Pump("stdout", logR)
		close(pumped)
	}()
	io.Copy(io.MultiWriter(logW, srv), pty)
	logW.Close()
	<-pumped
	info, err := r.Wait()
	code := -1
	if info != nil {
		code = info.Code
	}
	srv.finish(code)
	os.Remove(e.attachSocket(p.ID))
	return info, err
}

// ExitStatus maps an engine error to the CLI's exit status, as docker does: 125 when Bulwark
// refuses or fails, 126 when the command cannot be invoked, 127 when it is not found.
func ExitStatus(err error) int {
	if code, ok := sandbox.CommandStatus(err); ok {
		return code
	}
	return 125
}
