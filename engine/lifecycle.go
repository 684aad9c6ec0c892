package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/errdefs"
	"bulwark.dev/bulwark/internal/flock"
	"bulwark.dev/bulwark/internal/procstat"
	"bulwark.dev/bulwark/sandbox"
	"bulwark.dev/bulwark/supervisor"
)

// RestartPolicy is docker's --restart, carried out by the supervisor: "no" (or empty),
// "on-failure" (a non-zero or unknown exit status; at most MaxRetries times when it is not 0),
// "always" and "unless-stopped" (whatever the status, unless the container was stopped with
// stop). The two last differ in Docker only when its daemon restarts; Bulwark's containers
// outlive their supervisor, so they behave alike.
type RestartPolicy struct {
	Name       string `json:"name,omitempty"`
	MaxRetries int    `json:"maxRetries,omitempty"`
}

// ParseRestartPolicy reads no, on-failure[:N], always or unless-stopped.
func ParseRestartPolicy(s string) (RestartPolicy, error) {
	name, n, hasN := strings.Cut(s, ":")
	switch name {
	case "", "no", "always", "unless-stopped":
		if hasN {
			return RestartPolicy{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "restart policy %q: only on-failure takes a maximum", s)
		}
		return RestartPolicy{Name: name}, nil
	case "on-failure":
		p := RestartPolicy{Name: name}
		if hasN {
			v, err := strconv.Atoi(n)
			if err != nil || v < 0 {
				return RestartPolicy{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "restart policy %q: want on-failure[:N] with N ≥ 0", s)
			}
			p.MaxRetries = v
		}
		return p, nil
	}
	return RestartPolicy{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "restart policy %q: want no, on-failure[:N], always or unless-stopped", s)
}

func (p RestartPolicy) none() bool { return p.Name == "" || p.Name == "no" }

// checkRestart refuses a restart policy a run cannot carry: only a detached container has a
// supervisor to restart it, and --rm removes what a restart would start again (as docker says).
func checkRestart(req *Request) error {
	p, err := ParseRestartPolicy(req.Restart)
	if err != nil || p.none() {
		return err
	}
	if !req.Detach {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "--restart %s needs -d: the supervisor restarts detached containers", req.Restart)
	}
	if req.Remove {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "--restart %s conflicts with --rm", req.Restart)
	}
	return nil
}

// Restart back-off: the delay doubles from restartDelayFirst with each restart, up to
// restartDelayMax, and starts again once a run lasted restartResetAfter.
const (
	restartDelayFirst = 100 * time.Millisecond
	restartDelayMax   = time.Minute
	restartResetAfter = 10 * time.Second
)

// restartDue says whether a container that exited is to be started again by its policy, and
// after how long.
func (e *Engine) restartDue(m *Meta) (time.Duration, bool) {
	p := m.Restart
	if m.Exit == nil || p.none() || e.stoppedByUser(m.ID) {
		return 0, false
	}
	if p.Name == "on-failure" && (m.Exit.Code == 0 || (p.MaxRetries > 0 && m.RestartCount >= p.MaxRetries)) {
		return 0, false
	}
	if m.Exit.Duration >= restartResetAfter {
		return restartDelayFirst, true
	}
	return min(restartDelayFirst<<min(m.RestartCount, 12), restartDelayMax), true
}

// stoppedMarker exists while a container stands stopped by stop: its policy restarts it no more.
func (e *Engine) stoppedMarker(id string) string { return filepath.Join(e.metaDir(id), "stopped") }

// lockRecord takes the exclusive lock of a container's record directory: a restart holds it from
// the old sandbox's removal to the new one's start, stop and rm take it after writing the
// stopped marker, so that they never race a restart (which, once it has the lock, sees the
// marker and gives up).
func (e *Engine) lockRecord(id string) (func(), error) {
	fd, err := unix.Open(e.metaDir(id), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("lock the record of %s: %w", id, err)
	}
	if err := flock.Lock(fd, unix.LOCK_EX); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lock the record of %s: %w", id, err)
	}
	return func() { unix.Close(fd) }, nil
}

// stopAndWait writes the stopped marker, then waits for a restart in progress to be over.
func (e *Engine) stopAndWait(id string) error {
	if err := os.WriteFile(e.stoppedMarker(id), nil, 0o600); err != nil {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	unlock, err := e.lockRecord(id)
	if err != nil {
		return err
	}
	unlock()
	return nil
}

func (e *Engine) stoppedByUser(id string) bool {
	_, err := os.Stat(e.stoppedMarker(id))
	return err == nil
}

// StartContainer starts a stopped container of who's tenant again, detached under the
// supervisor, from its record: the plan decided when it was run (the same effective spec, image
// layers and policy source; bind sources resolved again, by their real paths).
func (e *Engine) StartContainer(id string, who Caller) error {
	return e.op(id, who, "start", func(c *sandbox.Container, m *Meta, _ *trail) (map[string]string, error) {
		if c != nil && !stopped(c) {
			return nil, errdefs.Errorf(errdefs.ErrConflict, "container %s is running", id)
		}
		if len(e.cfg.Monitor) == 0 {
			return nil, errors.New("start: this engine has no supervisor command (Config.Monitor)")
		}
		if err := os.Remove(e.stoppedMarker(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		if _, err := ask(e.cfg.Root, e.cfg.Monitor, supRequest{Op: opStart, ID: id}); err != nil {
			return nil, err
		}
		return map[string]string{}, nil
	})
}

// Restart stops a container (as Stop, timeout then SIGKILL) and starts it again.
func (e *Engine) Restart(id string, who Caller, timeout time.Duration) error {
	m, err := e.lookup(id, who, "restart")
	if err != nil {
		return err
	}
	if m.Exit == nil && !m.Started.IsZero() {
		if err := e.Stop(id, who, timeout); err != nil {
			return err
		}
		// The supervisor records the exit before the container can start again.
		for i := 0; i < 500; i++ {
			if m, err = e.readMeta(id); err != nil || m.Exit != nil || !m.Detached {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return e.StartContainer(id, who)
}

// readPlan reads the plan a container was run with (plan.json, written by Start).
func (e *Engine) readPlan(id string) (*Plan, error) {
	b, err := os.ReadFile(filepath.Join(e.metaDir(id), "plan.json"))
	if err != nil {
		return nil, fmt.Errorf("read the plan of %s: %w", id, err)
	}
	p := &Plan{}
	if err := json.Unmarshal(b, p); err != nil || p.Request == nil || p.Spec == nil || !p.Decision.Allow {
		return nil, fmt.Errorf("the plan of %s is not an allowed plan (%v)", id, err)
	}
	return p, nil
}

// restartRecorded creates and starts a stopped container again from its record (in the
// supervisor's helper): the last run's sandbox (cgroup, id range, network attachment) goes first.
func (e *Engine) restartRecorded(id string, stdio sandbox.IO) (*Running, error) {
	unlock, err := e.lockRecord(id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if e.stoppedByUser(id) {
		return nil, errdefs.Errorf(errdefs.ErrConflict, "container %s was stopped or is being removed", id)
	}
	m, err := e.readMeta(id)
	if err != nil {
		return nil, err
	}
	plan, err := e.readPlan(id)
	if err != nil {
		return nil, err
	}
	t := newTrail(e.audit, plan.Request.Identity, m.owner(), m.RequestID)
	t.SetContainer(id)
	t.SetImage(m.Image.Digest)
	rt, err := e.runtime(m.owner(), t)
	if err != nil {
		return nil, err
	}
	if c, err := rt.Load(id); err == nil {
		if err := c.Delete(true); err != nil {
			return nil, err
		}
	}
	if err := e.detachNetwork(m.Tenant, id); err != nil {
		return nil, err
	}
	// The recorded sources are real paths; each is opened again without following a magic
	// link, and mounted from that descriptor.
	spec, binds, err := sandbox.ResolveBinds(plan.Spec, "")
	if err != nil {
		return nil, err
	}
	plan.Spec, plan.binds, plan.trail, plan.root = spec, binds, t, e.cfg.Root
	t.Add(audit.TypeContainer, "restart", map[string]string{"count": strconv.Itoa(m.RestartCount + 1)})
	return e.start(context.Background(), plan, stdio, m)
}

// recordExit records how a detached (or collected) container ended: code is its status, or -1
// with why it is unknown. The exit joins the container's audit story; --rm removes it.
func (e *Engine) recordExit(id string, code int, why string) (*Meta, error) {
	m, err := e.readMeta(id)
	if err != nil || m.Exit != nil {
		return m, err
	}
	t := newTrail(e.audit, Identity{UID: m.UID}, m.owner(), m.RequestID)
	t.SetContainer(id)
	t.SetImage(m.Image.Digest)
	rt, err := e.runtime(m.owner(), t)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	t.started = m.Started
	t.mu.Unlock()
	attrs := map[string]string{"status": strconv.Itoa(code)}
	if why != "" {
		attrs = map[string]string{"status": "unknown", "error": why}
	}
	t.Event(id, "exit", attrs)
	info := t.exitInfo()
	info.Error = why
	m.Exit = info
	werr := e.writeMeta(m)
	if m.Remove {
		c, lerr := rt.Load(id)
		if lerr != nil {
			c = nil
		}
		werr = errors.Join(werr, e.remove(c, m, nil))
	}
	return m, errors.Join(werr, t.Flush())
}

// recordRestartFailure records that a restart by policy failed: the container stays stopped.
func (e *Engine) recordRestartFailure(id string, err error) {
	m, rerr := e.readMeta(id)
	if rerr != nil {
		return
	}
	t := newTrail(e.audit, Identity{UID: m.UID}, m.owner(), m.RequestID)
	t.SetContainer(id)
	t.Add(audit.TypeContainer, "restart.failed", map[string]string{"error": err.Error()})
	t.Flush()
}

// killUnsupervised kills a container the supervisor started but could not take (its log or
// terminal failed) and records why.
func (e *Engine) killUnsupervised(id string, why error) {
	e.killAll(id)
	e.recordExit(id, -1, "exit status unknown: the supervisor could not take the container: "+why.Error())
}

// killAll SIGKILLs every process of a container and waits (bounded) for its init to go.
func (e *Engine) killAll(id string) {
	m, err := e.readMeta(id)
	if err != nil {
		return
	}
	rt, err := e.runtime(m.owner(), nil)
	if err != nil {
		return
	}
	c, err := rt.Load(id)
	if err != nil {
		return
	}
	c.Signal(syscall.SIGKILL, true)
	for i := 0; i < 500 && !stopped(c); i++ {
		time.Sleep(20 * time.Millisecond)
	}
}

// collectForeground is called when a foreground run's client has exited: if it did not record
// the container's exit (it was SIGKILLed), the container is killed and its exit recorded as
// unknown; --rm removes it. No container outlives the client that alone could supervise it.
func (e *Engine) collectForeground(id string) {
	m, err := e.readMeta(id)
	if err != nil || m.Exit != nil {
		return
	}
	e.killAll(id)
	pid := 0
	if m.Client != nil {
		pid = m.Client.Pid
	}
	why := fmt.Sprintf("exit status unknown: its client (pid %d) died; the container was killed with it", pid)
	if _, err := e.recordExit(id, -1, why); err != nil && !errors.Is(err, ErrNotFound) {
		fmt.Fprintf(os.Stderr, "supervisor: collect %s: %v\n", id, err)
	}
}

// awaitUnsupervised waits (at most 5 s) until the supervisor has let go of a container that
// was just killed (its log FIFOs removed), so that nothing of it is written after rm returns.
func (e *Engine) awaitUnsupervised(id string) {
	io := filepath.Join(supervisorDir(e.cfg.Root), "io", id+".stdout")
	for i := 0; i < 250; i++ {
		if _, err := os.Lstat(io); errors.Is(err, os.ErrNotExist) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Process names one process for good: its pid and start time.
type Process struct {
	Pid   int    `json:"pid"`
	Start uint64 `json:"start"`
}

// selfStart is this process's start time once read (0: not yet): a run names itself twice
// (its quota reservation, its record's client), and each read of /proc/self/stat costs a
// multithreaded process 15-25 µs.
var selfStart atomic.Uint64

// self is the calling process.
func self() *Process {
	start := selfStart.Load()
	if start == 0 {
		start = procstat.StartTime(os.Getpid())
		selfStart.Store(start)
	}
	return &Process{Pid: os.Getpid(), Start: start}
}

// superviseForeground asks the supervisor to watch this process, the client of a foreground
// container (recorded in its Meta.Client). The supervisor then outlives this process; when it
// serves this engine's run root, it tidies it when it leaves, and Close leaves that to it.
func (e *Engine) superviseForeground(id string) error {
	req := supRequest{Op: opWatch, ID: id}
	st, err := ask(e.cfg.Root, e.cfg.Monitor, req)
	if errors.Is(err, errUnanswered) {
		// Even one the supervisor read and did not answer (it died with it): the watch is asked
		// again, of the next supervisor (a watch asked twice is one watch). ask itself asks
		// again only what was never read.
		st, err = ask(e.cfg.Root, e.cfg.Monitor, req)
	}
	if err != nil {
		return err
	}
	if st.RunRoot != "" && filepath.Clean(st.RunRoot) == filepath.Clean(e.cfg.RunRoot) {
		e.runRootTended.Store(true)
	}
	return nil
}

// ensureSupervised starts the state root's supervisor when a container needs one and none
// runs (it was killed): it adopts the containers again before it answers.
func (e *Engine) ensureSupervised(m *Meta) {
	if len(e.cfg.Monitor) == 0 || m.Exit != nil || m.Started.IsZero() {
		return
	}
	supervisor.Ensure(supervisorDir(e.cfg.Root), e.cfg.Monitor) //nolint:errcheck // best effort: the next command looks again
}
