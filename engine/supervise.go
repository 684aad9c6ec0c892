package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/errdefs"

	"bulwark.dev/bulwark/internal/console"
	"bulwark.dev/bulwark/internal/procstat"
	"bulwark.dev/bulwark/supervisor"
)

// idleGrace is how long the worker stays with nothing to supervise before it exits (its reaper
// with it): the next client that needs one starts a supervisor again.
const idleGrace = 2 * time.Second

// worker is the supervisor's worker (see monitor.go): one per state root.
type worker struct {
	e      *Engine
	dir    string
	reaper int // the worker's parent; once it is gone, no exit is recorded any more

	mu      sync.Mutex // guards everything below
	ctrs    map[string]*supervised
	watches map[string]bool // foreground containers whose client is watched
	busy    int             // requests being served and restarts pending
	wake    chan struct{}   // closed (and replaced) when the reaper records an exit
}

// supervised is one detached container the worker holds.
type supervised struct {
	id    string
	pid   int
	start uint64
	// orphan: init is not the reaper's child (adopted after the reaper died): its exit
	// status cannot be known.
	orphan bool
	logs   sync.WaitGroup // the log pumps, done when the container's output has ended
	attach *attachServer
}

// serveWorker adopts the state root's containers, then serves the supervisor socket until it
// has had nothing to supervise for idleGrace (or its reaper died: a new one adopts the rest).
func (e *Engine) serveWorker(dir string) error {
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGPIPE)
	if err := os.MkdirAll(filepath.Join(dir, "io"), 0o700); err != nil {
		return fmt.Errorf("supervisor: %w", err)
	}
	w := &worker{e: e, dir: dir, reaper: os.Getppid(), ctrs: map[string]*supervised{}, watches: map[string]bool{}, wake: make(chan struct{})}
	go w.notifications()
	w.adopt()
	ln, err := supervisor.Listen(dir)
	if err != nil {
		return err
	}
	go w.idle(ln)
	for {
		c, err := ln.AcceptUnix()
		if err != nil {
			break
		}
		w.hold(1)
		go func() {
			defer w.hold(-1)
			defer c.Close()
			w.serve(c)
		}()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if os.Getppid() != w.reaper {
		return errors.New("supervisor: the reaper died: leaving the containers to the next supervisor")
	}
	return nil
}

func (w *worker) hold(n int) {
	w.mu.Lock()
	w.busy += n
	w.mu.Unlock()
}

// idle closes the listener once nothing has been supervised for idleGrace, the state root is
// gone, or the reaper died.
func (w *worker) idle(ln *net.UnixListener) {
	since := time.Now()
	for range time.Tick(250 * time.Millisecond) {
		if os.Getppid() != w.reaper {
			ln.Close()
			return
		}
		if _, err := os.Stat(w.dir); err != nil {
			ln.Close()
			return
		}
		w.mu.Lock()
		active := len(w.ctrs) > 0 || len(w.watches) > 0 || w.busy > 0
		w.mu.Unlock()
		if active {
			since = time.Now()
		} else if time.Since(since) > idleGrace {
			ln.Close()
			return
		}
	}
}

// notifications wakes the containers' waiters after each exit the reaper recorded.
func (w *worker) notifications() {
	f := os.NewFile(supervisor.NotifyFD, "notify")
	if f == nil {
		return
	}
	b := make([]byte, 64)
	for {
		if _, err := f.Read(b); err != nil {
			return
		}
		w.mu.Lock()
		close(w.wake)
		w.wake = make(chan struct{})
		w.mu.Unlock()
	}
}

func (w *worker) serve(c *net.UnixConn) {
	// A plan handed over here is run as decided: only the supervisor's own user may hand one
	// (the socket's directory is the state root's, 0700; this holds even if it were not).
	if uid, err := peerUID(c); err != nil || uid != os.Geteuid() {
		supervisor.Send(c, &monitorStatus{Error: fmt.Sprintf("supervisor: refused a client of uid %d (%v)", uid, err), Code: 125})
		return
	}
	var req supRequest
	files, err := supervisor.Recv(c, &req)
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	if err != nil {
		return
	}
	var st *monitorStatus
	switch req.Op {
	case opRun:
		var stdin *os.File
		if req.Stdin && len(files) > 0 {
			stdin = files[len(files)-1]
			files = files[:len(files)-1]
		}
		st, err = w.run(req.Plan, files, stdin)
	case opStart:
		st, err = w.startRecorded(req.ID)
	case opWatch:
		st, err = &monitorStatus{ID: req.ID}, w.watch(req.ID)
	default:
		err = fmt.Errorf("supervisor: unknown request %q", req.Op)
	}
	if err != nil {
		var me *MonitorError
		if errors.As(err, &me) {
			st = &monitorStatus{Error: me.Msg, Code: me.Code}
		} else {
			st = &monitorStatus{Error: err.Error(), Code: ExitStatus(err)}
		}
	}
	supervisor.Send(c, st)
}

// run starts a decided plan (its bind sources are files; stdin, when not nil, its stdin).
func (w *worker) run(plan []byte, binds []*os.File, stdin *os.File) (*monitorStatus, error) {
	var p struct {
		ID      string `json:"id"`
		Request struct {
			TTY bool `json:"tty"`
		} `json:"request"`
	}
	if err := json.Unmarshal(plan, &p); err != nil || !validName(p.ID) {
		return nil, fmt.Errorf("supervisor: not a plan (%v)", err)
	}
	return w.launch(p.ID, p.Request.TTY, plan, binds, stdin)
}

// startRecorded starts a stopped container again from its record.
func (w *worker) startRecorded(id string) (*monitorStatus, error) {
	m, err := w.e.readMeta(id)
	if err != nil {
		return nil, err
	}
	plan, err := w.e.readPlan(id)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	_, running := w.ctrs[id]
	w.mu.Unlock()
	if running || (m.Exit == nil && !m.Started.IsZero() && procstat.Alive(m.Pid, m.PidStart)) {
		return nil, fmt.Errorf("container %s is running", id)
	}
	return w.launch(id, plan.Request.TTY, nil, nil, nil)
}

// fifo makes the container's log FIFO for stream and opens it twice: the worker's read end, and
// the container's end, read-write, so that the pipe always has a reader: a worker that dies never
// makes the workload's writes fail (EPIPE) — they wait in the pipe for the next worker, which
// opens the FIFO again by its path.
func (w *worker) fifo(id, stream string) (r, rw *os.File, err error) {
	p := w.fifoPath(id, stream)
	if err := unix.Mkfifo(p, 0o600); errors.Is(err, unix.EEXIST) {
		// Another container's of that name (it is being started or runs).
		return nil, nil, errdefs.Errorf(errdefs.ErrAlreadyExists, "container name %q is already in use", id)
	} else if err != nil {
		return nil, nil, fmt.Errorf("log fifo: %w", err)
	}
	if rw, err = os.OpenFile(p, os.O_RDWR, 0); err != nil {
		return nil, nil, fmt.Errorf("log fifo: %w", err)
	}
	if r, err = os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0); err != nil {
		rw.Close()
		return nil, nil, fmt.Errorf("log fifo: %w", err)
	}
	return r, rw, nil
}

func (w *worker) fifoPath(id, stream string) string {
	return filepath.Join(w.dir, "io", id+"."+stream)
}

func (w *worker) removeFifos(id string) {
	os.Remove(w.fifoPath(id, "stdout"))
	os.Remove(w.fifoPath(id, "stderr"))
}

// launch starts a container through a helper: a plan (with its bind sources and, when not nil,
// its stdin), or (plan nil) the recorded container id again. The helper exits once the workload
// runs; its init is then the reaper's child.
func (w *worker) launch(id string, tty bool, plan []byte, binds []*os.File, stdin *os.File) (*monitorStatus, error) {
	w.hold(1)
	defer w.hold(-1)
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Dir = "/"
	cmd.Env = append(os.Environ(), supervisor.EnvMode+"="+supervisor.ModeHelper)
	cmd.Stderr = os.Stderr
	if plan != nil {
		cmd.Stdin = bytes.NewReader(plan)
	} else {
		cmd.Env = append(cmd.Env, envRestartID+"="+id)
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer statusR.Close()
	var outR, errR, outW, errW *os.File
	var sock *console.Socket
	closeReaders := func() {
		for i, f := range []*os.File{outR, errR} {
			if f != nil {
				f.Close()
				os.Remove(w.fifoPath(id, [2]string{"stdout", "stderr"}[i]))
			}
		}
	}
	if tty {
		if sock, err = console.Listen(); err != nil {
			statusW.Close()
			return nil, err
		}
		defer sock.Close()
		cmd.Env = append(cmd.Env, envConsole+"="+sock.Path())
	} else {
		outR, outW, err = w.fifo(id, "stdout")
		if err == nil {
			errR, errW, err = w.fifo(id, "stderr")
		}
		if err != nil {
			statusW.Close()
			if outW != nil {
				outW.Close()
			}
			closeReaders()
			return nil, err
		}
	}
	cmd.ExtraFiles = append([]*os.File{statusW, outW, errW}, binds...)
	if stdin != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, stdin)
		cmd.Env = append(cmd.Env, envStdin+"=1")
	}
	err = cmd.Start()
	statusW.Close()
	for _, f := range []*os.File{outW, errW} {
		if f != nil {
			f.Close()
		}
	}
	if err != nil {
		closeReaders()
		return nil, fmt.Errorf("start helper: %w", err)
	}
	var st monitorStatus
	derr := json.NewDecoder(statusR).Decode(&st)
	cmd.Wait()
	if derr != nil || st.Error != "" || st.Pid <= 0 {
		closeReaders()
		if derr != nil {
			return nil, fmt.Errorf("the helper exited without starting the container: %w", derr)
		}
		return nil, &MonitorError{Msg: st.Error, Code: st.Code}
	}
	s := &supervised{id: st.ID, pid: st.Pid, start: st.Start}
	var pty *os.File
	if tty {
		if pty, err = sock.Master(); err != nil {
			w.e.killUnsupervised(st.ID, err)
			return nil, err
		}
	}
	if err := w.supervise(s, outR, errR, pty); err != nil {
		w.e.killUnsupervised(st.ID, err)
		return nil, err
	}
	return &st, nil
}

// supervise pumps a container's output into its log (and, with a terminal, serves attach) and
// waits for its exit in the background.
func (w *worker) supervise(s *supervised, outR, errR, pty *os.File) error {
	m, err := w.e.readMeta(s.id)
	if err != nil {
		return err
	}
	lw, err := OpenLog(w.e.LogPath(s.id), m.LogMaxSize, m.LogMaxFiles)
	if err != nil {
		return err
	}
	if pty != nil {
		srv, err := w.e.serveAttach(s.id, pty)
		if err != nil {
			lw.Close()
			pty.Close()
			return err
		}
		s.attach = srv
		s.logs.Add(1)
		go func() {
			defer s.logs.Done()
			defer pty.Close()
			// The master reads EIO once the last process holding the slave is gone.
			logR, logW := io.Pipe()
			pumped := make(chan struct{})
			go func() {
				lw.Pump("stdout", logR)
				close(pumped)
			}()
			io.Copy(io.MultiWriter(logW, srv), pty)
			logW.Close()
			<-pumped
		}()
	}
	for stream, rd := range map[string]*os.File{"stdout": outR, "stderr": errR} {
		if rd == nil {
			continue
		}
		s.logs.Add(1)
		go func() {
			defer s.logs.Done()
			defer rd.Close()
			lw.Pump(stream, rd)
		}()
	}
	go func() {
		s.logs.Wait()
		lw.Close()
	}()
	w.track(s)
	go w.await(s)
	return nil
}

// await waits for a supervised container's init to exit, then records it.
func (w *worker) await(s *supervised) {
	if pfd, err := unix.PidfdOpen(s.pid, 0); err == nil {
		if procstat.StartTime(s.pid) == s.start {
			waitPidfd(pfd)
		} else {
			unix.Close(pfd)
		}
	}
	code, why := w.exitStatus(s)
	w.finish(s, code, why)
}

// exitStatus returns the status the reaper recorded for s's init, or -1 and why it cannot be
// known.
func (w *worker) exitStatus(s *supervised) (int, string) {
	for {
		w.mu.Lock()
		wake := w.wake
		w.mu.Unlock()
		if st, ok := supervisor.TakeExit(w.dir, s.pid, s.start); ok {
			return st, ""
		}
		if s.orphan || os.Getppid() != w.reaper {
			return -1, "exit status unknown: the container's supervisor died before it exited"
		}
		select {
		case <-wake:
		case <-time.After(time.Second):
		}
	}
}

// finish records a container's exit once its output has ended, and restarts it when its policy
// says so.
func (w *worker) finish(s *supervised, code int, why string) {
	done := make(chan struct{})
	go func() { s.logs.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		// A process outside the container (none should) holds its output open.
	}
	if s.attach != nil {
		s.attach.finish(code)
		os.Remove(w.e.attachSocket(s.id))
	}
	w.removeFifos(s.id)
	m, err := w.e.recordExit(s.id, code, why)
	if err != nil && !errors.Is(err, ErrNotFound) {
		fmt.Fprintf(os.Stderr, "supervisor: record exit of %s: %v\n", s.id, err)
	}
	w.mu.Lock()
	delete(w.ctrs, s.id)
	w.mu.Unlock()
	if m == nil || err != nil {
		return
	}
	if delay, ok := w.e.restartDue(m); ok {
		w.hold(1)
		time.AfterFunc(delay, func() {
			defer w.hold(-1)
			if w.e.stoppedByUser(m.ID) {
				return // stopped while the restart waited
			}
			if _, err := w.startRecorded(m.ID); err != nil {
				fmt.Fprintf(os.Stderr, "supervisor: restart %s: %v\n", m.ID, err)
				w.e.recordRestartFailure(m.ID, err)
			} else if w.e.stoppedByUser(m.ID) {
				w.e.killAll(m.ID) // stop came while it was being created
			}
		})
	}
}

// adopt takes over the state root's containers after a supervisor died (or at the first start):
// detached ones still running are supervised again (their log FIFOs reopened by path: the pipes
// kept what the workload wrote meanwhile), those that ended meanwhile get the status the reaper
// recorded (or "unknown"), and foreground runs' clients are watched again.
func (w *worker) adopt() {
	type proc struct {
		pid   int
		start uint64
	}
	keep := map[proc]bool{}
	ents, _ := os.ReadDir(filepath.Join(w.e.cfg.Root, "engine"))
	for _, ent := range ents {
		m, err := w.e.readMeta(ent.Name())
		if err != nil || m.Exit != nil || m.Started.IsZero() {
			continue
		}
		if !m.Detached {
			if err := w.watch(m.ID); err != nil {
				fmt.Fprintf(os.Stderr, "supervisor: watch %s: %v\n", m.ID, err)
			}
			continue
		}
		s := &supervised{id: m.ID, pid: m.Pid, start: m.PidStart}
		if st, ok := supervisor.TakeExit(w.dir, m.Pid, m.PidStart); ok {
			w.track(s)
			go w.finish(s, st, "")
			continue
		}
		if !procstat.Alive(m.Pid, m.PidStart) {
			w.track(s)
			go w.finish(s, -1, "exit status unknown: the container ended while no supervisor ran")
			continue
		}
		keep[proc{m.Pid, m.PidStart}] = true
		s.orphan = procstat.Parent(m.Pid) != w.reaper
		var rds [2]*os.File
		for i, stream := range []string{"stdout", "stderr"} {
			if f, err := os.OpenFile(w.fifoPath(m.ID, stream), os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
				rds[i] = f
			}
		}
		if err := w.supervise(s, rds[0], rds[1], nil); err != nil {
			fmt.Fprintf(os.Stderr, "supervisor: adopt %s: %v\n", m.ID, err)
		}
	}
	supervisor.PruneExits(w.dir, func(pid int, start uint64) bool { return keep[proc{pid, start}] })
	// The FIFOs of containers removed while no supervisor ran.
	fifos, _ := os.ReadDir(filepath.Join(w.dir, "io"))
	for _, f := range fifos {
		id := strings.TrimSuffix(strings.TrimSuffix(f.Name(), ".stdout"), ".stderr")
		w.mu.Lock()
		_, ok := w.ctrs[id]
		w.mu.Unlock()
		if !ok {
			os.Remove(filepath.Join(w.dir, "io", f.Name()))
		}
	}
}

func (w *worker) track(s *supervised) {
	w.mu.Lock()
	w.ctrs[s.id] = s
	w.mu.Unlock()
}

// watch watches the client of a foreground container: when it dies without having recorded the
// container's exit (SIGKILLed), the container is killed and collected (removed with --rm).
func (w *worker) watch(id string) error {
	m, err := w.e.readMeta(id)
	if err != nil {
		return err
	}
	if m.Detached || m.Client == nil {
		return fmt.Errorf("container %s has no client to watch", id)
	}
	w.mu.Lock()
	if w.watches[id] {
		w.mu.Unlock()
		return nil
	}
	w.watches[id] = true
	w.mu.Unlock()
	pfd, err := unix.PidfdOpen(m.Client.Pid, 0)
	if err == nil && procstat.StartTime(m.Client.Pid) != m.Client.Start {
		unix.Close(pfd)
		err = unix.ESRCH
	}
	go func() {
		if err == nil {
			waitPidfd(pfd)
		}
		w.e.collectForeground(id)
		w.mu.Lock()
		delete(w.watches, id)
		w.mu.Unlock()
	}()
	return nil
}

// peerUID is the uid of the process at the other end of c (SO_PEERCRED).
func peerUID(c *net.UnixConn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return -1, err
	}
	if cerr != nil {
		return -1, cerr
	}
	return int(cred.Uid), nil
}

// waitPidfd waits (in the runtime's poller, not on a thread) until the process exits, and
// closes the descriptor.
func waitPidfd(pfd int) {
	unix.SetNonblock(pfd, true)
	f := os.NewFile(uintptr(pfd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Read(func(fd uintptr) bool {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
		return err != nil || n > 0
	})
}
