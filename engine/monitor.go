package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"bulwark.dev/bulwark/sandbox"
	"bulwark.dev/bulwark/supervisor"
)

// Detached containers are supervised by one supervisor per state root (package supervisor):
// a reaper, the parent of every detached init, that records exit statuses and restarts the
// worker, and the worker (serveWorker), which holds the containers' log FIFOs and terminals,
// records their exits, applies restart policies and watches foreground runs' clients. Both
// are this binary re-executed through its hidden entry point (argv, given by the caller: the
// command that calls ServeMonitor); the environment says which part each is. A container is
// started by a short-lived helper the worker spawns (its init then becomes the reaper's child).
//
// A helper gets, by descriptor number:
const (
	helperStatusFD = 3 // the helper reports its outcome here (monitorStatus, JSON)
	helperStdoutFD = 4 // the container's stdout: its log FIFO, opened read-write
	helperStderrFD = 5 // the container's stderr, likewise
	helperBindFD   = 6 // the plan's bind sources, in order, from here on; then its stdin (envStdin)
)

// Helper environment: a restart names the container (no plan on stdin); a terminal's master
// goes to the worker's console socket.
const (
	envRestartID = "_BULWARK_RESTART_ID"
	envConsole   = "_BULWARK_CONSOLE"
	// envStdin: the descriptor after the bind sources is the container's stdin (Plan.Stdin).
	envStdin = "_BULWARK_STDIN"
)

// monitorStatus is what a helper reports to the worker, and the worker to its client.
type monitorStatus struct {
	ID    string `json:"id,omitempty"`
	Pid   int    `json:"pid,omitempty"`
	Start uint64 `json:"start,omitempty"`
	Error string `json:"error,omitempty"`
	Code  int    `json:"code,omitempty"`
	// RunRoot, in a watch's answer, is the run root the worker serves, which it tidies when it
	// leaves (Engine.Close).
	RunRoot string `json:"runRoot,omitempty"`
}

// MonitorError is a failure the supervisor reported: the container was not started.
type MonitorError struct {
	Msg  string
	Code int // the exit status ExitStatus gave the failure
}

func (e *MonitorError) Error() string { return e.Msg }

// supervisorDir is the state root's supervisor directory.
func supervisorDir(root string) string { return filepath.Join(root, "supervisor") }

// supRequest is a client's request to the worker. Its message carries the client's network
// namespace as its first descriptor (monitor_netns.go), then a run's bind sources.
type supRequest struct {
	Op   string          `json:"op"` // opRun, opStart, opWatch
	Plan json.RawMessage `json:"plan,omitempty"`
	ID   string          `json:"id,omitempty"`
	// Stdin: the last descriptor sent with an opRun is the container's stdin.
	Stdin bool `json:"stdin,omitempty"`
}

const (
	opRun   = "run"   // start a decided plan detached (bind sources as descriptors)
	opStart = "start" // start a stopped container again from its record
	opWatch = "watch" // watch a foreground run's client; collect the container if it dies
)

// errUnanswered is ask's failure once connected: the supervisor took the request (or only the
// connection) and never answered.
var errUnanswered = errors.New("supervisor did not answer")

// errNotTaken is ask's failure when the supervisor let the connection go before it had read the
// whole request: nothing of the request was done, whatever it was, so it is asked again.
var errNotTaken = errors.New("supervisor did not take the request")

// ask sends one request to the state root's supervisor (started through argv when none runs),
// with this thread's network namespace first and then files, and returns its answer. A request
// the supervisor did not take (errNotTaken: one leaving or dying as this client connected) is
// asked again, of the next supervisor, once.
func ask(root string, argv []string, req supRequest, files ...*os.File) (*monitorStatus, error) {
	st, err := askOnce(root, argv, req, files...)
	if errors.Is(err, errNotTaken) {
		st, err = askOnce(root, argv, req, files...)
	}
	return st, err
}

// askOnce is one connection of ask. The kernel tells a request the supervisor never read from
// one it read: a unix stream socket closed with data unread, or never accepted, resets its peer
// (ECONNRESET on the client's read, EPIPE or ECONNRESET on its write), while one closed after
// reading the whole request ends the client's read (EOF). A detached run's plan that was read may
// have started (its helper outlives the worker), so only a request never read is errNotTaken.
func askOnce(root string, argv []string, req supRequest, files ...*os.File) (*monitorStatus, error) {
	netns, err := clientNetns()
	if err != nil {
		return nil, err
	}
	defer netns.Close()
	c, err := supervisor.Dial(supervisorDir(root), argv)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	notTaken := func(err error) error {
		if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
			return fmt.Errorf("%w: %w: %w", errUnanswered, errNotTaken, err)
		}
		return fmt.Errorf("%w: %w", errUnanswered, err)
	}
	if err := supervisor.Send(c, req, append([]*os.File{netns}, files...)...); err != nil {
		return nil, notTaken(err)
	}
	var st monitorStatus
	if _, err := supervisor.Recv(c, &st); err != nil {
		return nil, notTaken(err)
	}
	if st.Error != "" {
		return nil, &MonitorError{Msg: st.Error, Code: st.Code}
	}
	return &st, nil
}

// SpawnMonitor hands an allowed plan to the state root's supervisor (argv: the command that
// runs ServeMonitor, used to start the supervisor when none runs) and returns once the workload
// runs, with the container id; a failure to create is a *MonitorError.
func SpawnMonitor(plan *Plan, argv []string) (string, error) {
	if plan.root == "" {
		return "", errors.New("spawn monitor: the plan was not prepared by an engine")
	}
	// The plan's quota reservation holds until the supervisor has made the container's record.
	defer plan.endReservation()
	b, binds, err := EncodePlan(plan)
	if err != nil {
		return "", err
	}
	defer func() {
		for _, f := range binds {
			f.Close()
		}
	}()
	req := supRequest{Op: opRun, Plan: b}
	files := binds
	if plan.Stdin != nil {
		req.Stdin, files = true, append(append([]*os.File{}, binds...), plan.Stdin)
	}
	st, err := ask(plan.root, argv, req, files...)
	if err != nil {
		return "", err
	}
	return st.ID, nil
}

// ServeMonitor is the body of the binary's hidden entry point (see SpawnMonitor): the
// supervisor's reaper, its worker, or a helper starting one container, as the environment says.
// open opens the engine (the reaper never does: it stays small).
func ServeMonitor(open func() (*Engine, error), planIn io.Reader) error {
	dir := os.Getenv(supervisor.EnvDir)
	if dir == "" {
		return errors.New("monitor: not started by a supervisor")
	}
	switch mode := os.Getenv(supervisor.EnvMode); mode {
	case supervisor.ModeReaper:
		return supervisor.RunReaper(dir, append([]string{"/proc/self/exe"}, os.Args[1:]...))
	case supervisor.ModeWorker:
		if _, err := os.Stat(dir); err != nil {
			// Its state root was removed: nothing to serve, and nothing to make again.
			return nil
		}
		e, err := open()
		if err != nil {
			return err
		}
		defer e.Close()
		return e.serveWorker(dir)
	case supervisor.ModeHelper:
		return serveHelper(open, planIn)
	default:
		return fmt.Errorf("monitor: unknown mode %q", mode)
	}
}

// serveHelper starts one container (a plan from planIn, or a stopped container again), reports
// and exits without waiting: the container's init becomes the reaper's child.
func serveHelper(open func() (*Engine, error), planIn io.Reader) error {
	status := os.NewFile(helperStatusFD, "status")
	if status == nil {
		return errors.New("monitor: no status descriptor")
	}
	defer status.Close()
	report := func(st monitorStatus) error { return json.NewEncoder(status).Encode(st) }
	fail := func(err error) error {
		report(monitorStatus{Error: err.Error(), Code: ExitStatus(err)})
		return err
	}
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGPIPE)
	e, err := open()
	if err != nil {
		return fail(err)
	}
	defer e.Close()
	stdio := sandbox.IO{ConsoleSocket: os.Getenv(envConsole)}
	if stdio.ConsoleSocket == "" {
		stdio.Stdout = os.NewFile(helperStdoutFD, "stdout")
		stdio.Stderr = os.NewFile(helperStderrFD, "stderr")
	}
	var r *Running
	if id := os.Getenv(envRestartID); id != "" {
		r, err = e.restartRecorded(id, stdio)
	} else {
		var b []byte
		if b, err = io.ReadAll(planIn); err != nil {
			return fail(err)
		}
		var plan *Plan
		if plan, err = e.DecodePlan(b, func(i int) *os.File {
			return os.NewFile(uintptr(helperBindFD+i), "bind source")
		}); err != nil {
			return fail(err)
		}
		if os.Getenv(envStdin) != "" {
			stdio.Stdin = os.NewFile(uintptr(helperBindFD+len(plan.BindSources)), "stdin")
		}
		r, err = e.Start(context.Background(), plan, stdio)
	}
	if err != nil {
		return fail(err)
	}
	if err := r.trail.Flush(); err != nil {
		r.c.Signal(syscall.SIGKILL, true)
		return fail(err)
	}
	return report(monitorStatus{ID: r.ID(), Pid: r.Pid, Start: r.meta.PidStart})
}
