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
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/errdefs"

	"bulwark.dev/bulwark/internal/console"
	"bulwark.dev/bulwark/internal/names"
	"bulwark.dev/bulwark/internal/pidfd"
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
	reaper int               // the worker's parent; once it is gone, no exit is recorded any more
	store  *supervisor.Store // the reaper's store of what outlives the worker (nil: none)

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
	// status is read from its pidfd.
	orphan bool
	pidfd  *os.File       // init's, opened while it ran (nil: it was gone)
	netns  *os.File       // the client's network namespace, where its network is (nil: ours)
	logs   sync.WaitGroup // the log pumps, done when the container's output has ended
	attach *attachServer
	// dropped is closed once finish has recorded the exit and dropped the container from ctrs.
	dropped chan struct{}
}

// close releases the container's descriptors, once nothing more is done for it.
func (s *supervised) close() { closeFiles(s.pidfd, s.netns) }

// serveWorker adopts the state root's containers, then serves the supervisor socket until it
// has had nothing to supervise for idleGrace (or its reaper died: a new one adopts the rest).
func (e *Engine) serveWorker(dir string) error {
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGPIPE)
	// Mkdir, not MkdirAll: a state root removed meanwhile is not made again.
	if err := os.Mkdir(filepath.Join(dir, "io"), 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("supervisor: %w", err)
	}
	w := &worker{e: e, dir: dir, reaper: os.Getppid(), ctrs: map[string]*supervised{}, watches: map[string]bool{}, wake: make(chan struct{})}
	store, kept, err := supervisor.OpenStore()
	if err != nil {
		return err
	}
	w.store = store
	go w.notifications()
	w.adopt(kept)
	for {
		ln, err := supervisor.Listen(dir)
		if err != nil {
			return err
		}
		go w.idle(ln)
		w.accept(ln)
		if os.Getppid() != w.reaper {
			return errors.New("supervisor: the reaper died: leaving the containers to the next supervisor")
		}
		if _, err := os.Stat(dir); err != nil {
			return nil // its state root is gone (idle)
		}
		// What a client handed the worker as it left (leave) may have given it something to
		// supervise: it listens again, and clients waiting for it to go (Dial) reach it.
		if !w.active() {
			return nil
		}
	}
}

// accept serves the clients of ln until it is closed, or drained once the worker leaves, and
// every request taken is answered.
func (w *worker) accept(ln *net.UnixListener) {
	var serving sync.WaitGroup
	for {
		c, err := ln.AcceptUnix()
		if err != nil {
			break
		}
		w.hold(1)
		serving.Add(1)
		go func() {
			defer serving.Done()
			defer w.hold(-1)
			defer c.Close()
			w.serve(c)
		}()
	}
	ln.Close()
	serving.Wait()
}

// drainGrace is how long a leaving worker still takes the clients that connected before its
// socket's name went.
const drainGrace = 50 * time.Millisecond

// leave has an idle worker stop taking clients without dropping one: its socket's name goes
// first, so a client from then on finds none listening and waits for this supervisor to go and
// starts the next one (supervisor.Dial), and what clients connected before is still taken
// (accept) until drainGrace has passed. Closing the listener at once reset a connection
// queued on it, unanswered: a foreground run's watch was asked again (e869b6a), but a
// detached run failed ("supervisor did not answer") and could not be asked again.
func (w *worker) leave(ln *net.UnixListener) {
	if err := supervisor.Unlisten(w.dir); err != nil {
		ln.Close() // no drain: the name may still lead here
		return
	}
	ln.SetDeadline(time.Now().Add(drainGrace))
}

// active reports whether the worker has something to supervise or a request in hand.
func (w *worker) active() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.ctrs) > 0 || len(w.watches) > 0 || w.busy > 0
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
		if w.active() {
			since = time.Now()
		} else if time.Since(since) > idleGrace {
			w.leave(ln)
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
	var netns *os.File
	if len(files) > 0 {
		netns = files[0]
	}
	if err = checkNetns(netns); err != nil {
		supervisor.Send(c, &monitorStatus{Error: err.Error(), Code: 125})
		return
	}
	switch req.Op {
	case opRun:
		var stdin *os.File
		binds := files[1:]
		if req.Stdin && len(binds) > 0 {
			stdin, binds = binds[len(binds)-1], binds[:len(binds)-1]
		}
		st, err = w.run(req.Plan, netns, binds, stdin)
	case opStart:
		st, err = w.startRecorded(req.ID, netns)
	case opWatch:
		st, err = &monitorStatus{ID: req.ID, RunRoot: w.e.cfg.RunRoot}, w.watch(req.ID, netns)
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

// run starts a decided plan (its bind sources are files; stdin, when not nil, its stdin) with
// its network in netns.
func (w *worker) run(plan []byte, netns *os.File, binds []*os.File, stdin *os.File) (*monitorStatus, error) {
	var p struct {
		ID      string `json:"id"`
		Request struct {
			TTY bool `json:"tty"`
		} `json:"request"`
	}
	if err := json.Unmarshal(plan, &p); err != nil || !names.Object(p.ID) {
		return nil, fmt.Errorf("supervisor: not a plan (%v)", err)
	}
	return w.launch(p.ID, p.Request.TTY, plan, binds, stdin, netns)
}

// startRecorded starts a stopped container again from its record, its network in netns.
func (w *worker) startRecorded(id string, netns *os.File) (*monitorStatus, error) {
	m, err := w.e.readMeta(id)
	if err != nil {
		return nil, err
	}
	plan, err := w.e.readPlan(id)
	if err != nil {
		return nil, err
	}
	if w.tracks(m) || (m.Exit == nil && !m.Started.IsZero() && procstat.Alive(m.Pid, m.PidStart)) {
		return nil, fmt.Errorf("container %s is running", id)
	}
	return w.launch(id, plan.Request.TTY, nil, nil, nil, netns)
}

// tracks reports whether the worker supervises the container m records. One whose exit m
// already holds (a restart waited for that) is being dropped by finish: tracks waits for it
// (bounded) rather than have a start refuse the container as running meanwhile.
func (w *worker) tracks(m *Meta) bool {
	w.mu.Lock()
	s, ok := w.ctrs[m.ID]
	w.mu.Unlock()
	if !ok || m.Exit == nil {
		return ok
	}
	select {
	case <-s.dropped:
		return false
	case <-time.After(10 * time.Second):
		return true
	}
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

// launch starts a container through a helper, in the network namespace netns (nil: the
// worker's): a plan (with its bind sources and, when not nil, its stdin), or (plan nil) the
// recorded container id again. The helper exits once the workload runs; its init is then the
// reaper's child.
func (w *worker) launch(id string, tty bool, plan []byte, binds []*os.File, stdin, netns *os.File) (*monitorStatus, error) {
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
	err = inNetns(netns, cmd.Start)
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
	s := &supervised{id: st.ID, pid: st.Pid, start: st.Start, dropped: make(chan struct{})}
	var pty *os.File
	if s.netns, err = dupFile(netns); err == nil && tty {
		pty, err = sock.Master()
	}
	if err == nil {
		err = w.supervise(s, outR, errR, pty)
	}
	if err != nil {
		inNetns(s.netns, func() error { w.e.killUnsupervised(st.ID, err); return nil })
		s.close()
		return nil, err
	}
	return &st, nil
}

// supervise pumps a container's output into its log (and, with a terminal, serves attach) and
// waits for its exit in the background. Its init's pidfd, network namespace and terminal go to
// the reaper's store, so that they outlive this worker.
func (w *worker) supervise(s *supervised, outR, errR, pty *os.File) error {
	m, err := w.e.readMeta(s.id)
	if err != nil {
		closeFiles(outR, errR, pty)
		return err
	}
	if s.pidfd == nil {
		s.pidfd, _ = pidfdOf(s.pid, s.start)
	}
	for kind, f := range map[string]*os.File{keptPidfd: s.pidfd, keptNetns: s.netns, keptPty: pty} {
		if f != nil && w.store != nil {
			if err := w.store.Put(keptName(s.id, kind), f); err != nil {
				fmt.Fprintf(os.Stderr, "supervisor: %s: %v\n", s.id, err)
			}
		}
	}
	lw, err := OpenLog(w.e.LogPath(s.id), m.LogMaxSize, m.LogMaxFiles)
	if err != nil {
		closeFiles(outR, errR, pty)
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
	if s.pidfd != nil {
		pidfd.WaitExit(s.pidfd)
	}
	code, why := w.exitStatus(s)
	w.finish(s, code, why)
}

// exitStatus returns the status of s's init, which has exited: the reaper's record of its child,
// or else (it is not the reaper's child, or the reaper does not record it) what its pidfd or
// its zombie says; or -1 and why it was lost.
func (w *worker) exitStatus(s *supervised) (int, string) {
	for tries := 0; ; tries++ {
		w.mu.Lock()
		wake := w.wake
		w.mu.Unlock()
		if st, ok := supervisor.TakeExit(w.dir, s.pid, s.start); ok {
			return st, ""
		}
		unrecorded := s.orphan || os.Getppid() != w.reaper || tries >= 3
		if unrecorded {
			if st, ok := supervisor.ExitStatus(fileFD(s.pidfd), s.pid, s.start); ok {
				return st, ""
			}
			if s.pidfd == nil || tries >= 50 {
				return -1, exitLost
			}
		}
		wait := time.Second
		if unrecorded {
			wait = 20 * time.Millisecond
		}
		select {
		case <-wake:
		case <-time.After(wait):
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
	if w.store != nil {
		w.store.Drop(keptName(s.id, keptPidfd), keptName(s.id, keptNetns), keptName(s.id, keptPty))
	}
	// --rm detaches its network where it was set up.
	var m *Meta
	err := inNetns(s.netns, func() (err error) {
		m, err = w.e.recordExit(s.id, code, why)
		return err
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		fmt.Fprintf(os.Stderr, "supervisor: record exit of %s: %v\n", s.id, err)
	}
	w.mu.Lock()
	delete(w.ctrs, s.id)
	w.mu.Unlock()
	close(s.dropped)
	if m == nil || err != nil {
		s.close()
		return
	}
	delay, ok := w.e.restartDue(m)
	if !ok {
		s.close()
		return
	}
	w.hold(1)
	time.AfterFunc(delay, func() {
		defer w.hold(-1)
		defer s.close()
		if w.e.stoppedByUser(m.ID) {
			return // stopped while the restart waited
		}
		if _, err := w.startRecorded(m.ID, s.netns); err != nil {
			fmt.Fprintf(os.Stderr, "supervisor: restart %s: %v\n", m.ID, err)
			w.e.recordRestartFailure(m.ID, err)
		} else if w.e.stoppedByUser(m.ID) {
			w.e.killAll(m.ID) // stop came while it was being created
		}
	})
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
