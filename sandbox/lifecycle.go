package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/procstat"
	"bulwark.dev/bulwark/sandbox/internal/cgroups"
	"bulwark.dev/bulwark/sandbox/internal/idmap"
	"bulwark.dev/bulwark/sandbox/internal/mac"
)

// ErrNoExitStatus is returned by Wait in a process that did not create the container: only the
// parent of init can collect its exit status.
var ErrNoExitStatus = errors.New("exit status is only available to the process that created the container")

func (c *Container) setStatus(st *stateFile, to Status) error {
	if err := transition(Status(st.Status), to); err != nil {
		return err
	}
	st.Status = specs.ContainerState(to)
	return writeState(c.dir, st)
}

// Start lets the waiting init execute the workload: one byte on the exec fifo, which init has
// been blocking on since Create finished every confinement step.
func (c *Container) Start() error {
	begun := time.Now()
	unlock, err := lockDir(c.dir)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := c.load()
	if err != nil {
		return err
	}
	if err := transition(Status(st.Status), StatusRunning); err != nil || Status(st.Status) != StatusCreated {
		return fmt.Errorf("%w: start needs a created container, %s is %s", ErrInvalidState, c.id, st.Status)
	}
	fifo := filepath.Join(c.dir, execFifo)
	// O_NONBLOCK: if init is gone there is no reader and open fails at once (ENXIO) instead of
	// hanging forever.
	fd, err := unix.Open(fifo, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("start %s: open exec fifo: %w", c.id, err)
	}
	_, werr := unix.Write(fd, []byte{0})
	unix.Close(fd)
	if werr != nil {
		return fmt.Errorf("start %s: write exec fifo: %w", c.id, werr)
	}
	// The fifo gone is the container's "running" (see refresh): no state is written.
	if err := os.Remove(fifo); err != nil {
		return fmt.Errorf("start %s: remove exec fifo: %w", c.id, err)
	}
	c.rt.event(c.id, "start", nil)
	c.started = time.Now()
	c.rt.step(c.id, "start", c.started.Sub(begun))
	return nil
}

// Wait waits for the init process and returns its exit status (128+n for death by signal n).
func (c *Container) Wait() (int, error) { return c.WaitContext(context.Background()) }

// WaitContext is Wait that gives up when ctx is done; the exit status is kept for a later Wait.
func (c *Container) WaitContext(ctx context.Context) (int, error) {
	if c.initPid == 0 {
		st, err := c.load()
		if err != nil {
			return -1, err
		}
		if err := waitGone(ctx, st); err != nil {
			return -1, err
		}
		return -1, ErrNoExitStatus
	}
	if ctx.Done() == nil {
		return c.reapInit()
	}
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := c.reapInit()
		done <- result{code, err}
	}()
	select {
	case r := <-done:
		return r.code, r.err
	case <-ctx.Done():
		return -1, fmt.Errorf("wait for %s: %w", c.id, ctx.Err())
	}
}

// reapInit collects init's exit status, once.
func (c *Container) reapInit() (int, error) {
	c.waitOnce.Do(func() {
		if !c.started.IsZero() {
			defer func() { c.rt.step(c.id, "workload", time.Since(c.started)) }()
		}
		c.exitCode, c.waitErr = reap(c.initPid)
		c.reaped.Store(c.waitErr == nil)
		c.rt.event(c.id, "exit", map[string]string{"status": strconv.Itoa(c.exitCode)})
	})
	return c.exitCode, c.waitErr
}

// waitGone blocks until the recorded init process exits (through a pidfd) or ctx is done.
func waitGone(ctx context.Context, st *stateFile) error {
	if !st.initAlive() {
		return nil
	}
	pfd, err := unix.PidfdOpen(st.Pid, 0)
	if err != nil {
		return nil
	}
	defer unix.Close(pfd)
	if procstat.StartTime(st.Pid) != st.InitStartTime {
		return nil
	}
	for {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(pfd), Events: unix.POLLIN}}, 100)
		switch {
		case err == unix.EINTR || (err == nil && n == 0):
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("wait for init %d: %w", st.Pid, err)
			}
		default:
			return err
		}
	}
}

// Signal sends sig to init, or to every process of the container when all is set. As runc
// (which containerd's shim relies on): signalling init of a container that is not running
// (stopped, or still being created) is ErrNotRunning, while all on a stopped container signals
// whatever is left in its cgroup, if anything, and succeeds.
func (c *Container) Signal(sig syscall.Signal, all bool) error {
	st, err := c.load()
	if err != nil {
		return err
	}
	stopped := false
	switch Status(st.Status) {
	case StatusCreated, StatusRunning, StatusPaused:
	case StatusStopped:
		stopped = true
	default:
		return fmt.Errorf("%w: %s is %s", ErrNotRunning, c.id, st.Status)
	}
	if !all {
		if stopped {
			return fmt.Errorf("%w: %s is stopped", ErrNotRunning, c.id)
		}
		return st.signalInit(unix.Signal(sig))
	}
	cg, err := st.cgroup()
	if err != nil {
		return err
	}
	if stopped && !cgroupExists(cg) {
		return nil
	}
	pids, err := cg.Pids()
	if err != nil {
		return fmt.Errorf("list processes: %w", err)
	}
	for _, p := range pids {
		// Pids come from the container's own cgroup, which only its processes can be in.
		unix.Kill(p, sig)
	}
	if sig == syscall.SIGKILL && Status(st.Status) == StatusPaused {
		// A frozen task only dies once thawed (as runc does for kill -a KILL).
		if err := cg.Thaw(); err != nil {
			return fmt.Errorf("thaw %s after SIGKILL: %w", c.id, err)
		}
	}
	return nil
}

// Pause freezes every process of the container.
func (c *Container) Pause() error {
	return c.freezeTransition(StatusRunning, StatusPaused, "pause needs a running", "freeze",
		cgroups.Manager.Freeze)
}

// Resume thaws a paused container.
func (c *Container) Resume() error {
	return c.freezeTransition(StatusPaused, StatusRunning, "resume needs a paused", "thaw",
		cgroups.Manager.Thaw)
}

// freezeTransition is the one legal path between running and paused: under the state lock it
// checks the container is in from, applies op (freeze or thaw) to its cgroup and records to.
func (c *Container) freezeTransition(from, to Status, need, opName string, op func(cgroups.Manager) error) error {
	unlock, err := lockDir(c.dir)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := c.load()
	if err != nil {
		return err
	}
	if Status(st.Status) != from {
		return fmt.Errorf("%w: %s container, %s is %s", ErrInvalidState, need, c.id, st.Status)
	}
	cg, err := st.cgroup()
	if err != nil {
		return err
	}
	if err := op(cg); err != nil {
		return fmt.Errorf("%s %s: %w", opName, c.id, err)
	}
	return c.setStatus(st, to)
}

// Delete kills whatever still runs, destroys the cgroup, releases the id range and removes the
// state. It is idempotent and works on a container whose creation crashed half-way (whatever
// state.json recorded, or nothing at all, is enough). A running or paused container needs force;
// a created one is deleted without (as runc does).
func (c *Container) Delete(force bool) error { return c.DeleteContext(context.Background(), force) }

// DeleteContext is Delete that stops waiting for killed processes to go when ctx is done (or
// after 5 seconds), with an error and the container left to delete again.
func (c *Container) DeleteContext(ctx context.Context, force bool) error {
	begun := time.Now()
	unlock, err := lockDir(c.dir)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := readState(c.dir)
	if err == nil {
		err = c.owned(st)
	}
	switch {
	case errors.Is(err, errForeign):
		return fmt.Errorf("%w: %s", ErrNotExist, c.id)
	case errors.Is(err, ErrNotExist):
		if _, serr := os.Stat(c.dir); errors.Is(serr, os.ErrNotExist) {
			return nil // already deleted
		}
		// Crashed before the first state write: only the directory and maybe a cgroup exist.
		st = newStateFile(c.id, "", c.rt.opts.Tenant, nil)
	case err != nil:
		return err
	}
	gone := c.initReaped(st)
	switch Status(st.Status) {
	case StatusCreated, StatusRunning, StatusPaused:
		if gone {
			// refresh's answer, without asking /proc: this process reaped init.
			st.Status = specs.ContainerState(StatusStopped)
			break
		}
		fallthrough
	default:
		st.refresh(c.dir)
	}
	if s := Status(st.Status); (s == StatusRunning || s == StatusPaused) && !force {
		return fmt.Errorf("%w: %s is %s; stop it first or delete with force", ErrInvalidState, c.id, s)
	}
	cg, err := c.kill(ctx, st, gone)
	if err != nil {
		return err
	}
	// Every process is gone: the cgroup's directories go while the labels and the id range are
	// given back (both wait on the kernel). The state stays until all three are done, so a
	// failure leaves the container to delete again.
	destroyed := make(chan error, 1)
	go func() { destroyed <- cg.Destroy() }()
	if err := c.release(st); err != nil {
		return errors.Join(err, <-destroyed)
	}
	if err := <-destroyed; err != nil {
		return fmt.Errorf("destroy cgroup: %w", err)
	}
	if err := c.rt.removeState(c.dir); err != nil {
		return err
	}
	c.rt.event(c.id, "delete", nil)
	c.rt.step(c.id, "teardown", time.Since(begun))
	return nil
}

// release gives back what a deleted container held besides its cgroup, once its init is reaped:
// its MAC labels and its tenant's id range.
func (c *Container) release(st *stateFile) error {
	if c.initPid != 0 {
		c.Wait()
	}
	tenant := st.Tenant
	if tenant == "" {
		tenant = c.rt.opts.Tenant
	}
	layers := st.MAC.Layers
	if !st.MAC.Layers.Any() {
		layers = hostLayers() // crashed before the MAC state was recorded
	}
	store, err := c.rt.labelStore(layers)
	if err != nil {
		return err
	}
	if err := mac.Cleanup(layers, store, c.rt.macKey(c.id)); err != nil {
		return fmt.Errorf("release MAC labels: %w", err)
	}
	alloc, err := idmap.Open(c.rt.opts.IDMapDir)
	if err != nil {
		return fmt.Errorf("open id allocator: %w", err)
	}
	if err := alloc.Release(tenant, c.rt.rangeHolder(c.id)); err != nil {
		return fmt.Errorf("release id range: %w", err)
	}
	return nil
}

// initReaped reports whether st's init is the one this process created and has reaped: then it
// is gone for sure, and Delete does not ask /proc.
func (c *Container) initReaped(st *stateFile) bool {
	return c.initPid != 0 && st.Pid == c.initPid && c.reaped.Load()
}

// kill SIGKILLs every process in the container's cgroup (and init by pidfd), thaws a frozen
// cgroup so the kill lands, and waits until the cgroup is empty. It returns the cgroup, for the
// caller to remove. initGone says init is known to be reaped.
func (c *Container) kill(ctx context.Context, st *stateFile, initGone bool) (cgroups.Manager, error) {
	name := st.Cgroup
	if name == "" {
		name = "bulwark/" + c.id
	}
	cg, err := c.cgroupOf(name)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(5 * time.Second)
	seen := map[int]bool{}
	thawed := false
	// Note every process before the first kill: once init dies, the kernel kills the rest of its
	// pid namespace, and they leave the cgroup before they can be reaped.
	pids, err := cg.Pids()
	if err == nil {
		for _, p := range pids {
			seen[p] = true
		}
	}
	if initGone && err == nil && len(pids) == 0 {
		// Nothing to kill, nothing signalled since the cgroup was found empty: the loop below
		// would read it once more to find it empty.
		return cg, nil
	}
	if !initGone && st.initAlive() {
		st.signalInit(unix.SIGKILL)
	}
	// Exec'd processes are children of the process that exec'd them (nsenter's CLONE_PARENT);
	// if that is us and nobody waited, reap them here: until every task of its pid namespace is
	// reaped, init cannot finish exiting.
	defer func() {
		// A process leaves its cgroup (cgroup_exit) before it turns into a zombie (exit_notify),
		// so an empty cgroup does not mean it can be reaped yet: poll briefly. Init is left to
		// its own Wait, which would otherwise lose the exit status.
		until := time.Now().Add(2 * time.Second)
		for p := range seen {
			if p == st.Pid {
				continue
			}
			for {
				got, err := unix.Wait4(p, nil, unix.WNOHANG, nil)
				if got == p || (err != nil && err != unix.EINTR) || time.Now().After(until) {
					break
				}
				time.Sleep(time.Millisecond)
			}
		}
	}()
	for {
		pids, err := cg.Pids()
		if err != nil || len(pids) == 0 {
			break
		}
		for _, p := range pids {
			seen[p] = true
			unix.Kill(p, unix.SIGKILL)
		}
		if !thawed {
			// A frozen task only dies once thawed (paused, or a crash left the cgroup frozen).
			cg.Thaw()
			thawed = true
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("delete %s: processes %v survive SIGKILL", c.id, pids)
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("delete %s: processes %v not gone yet: %w", c.id, pids, err)
		}
		time.Sleep(time.Millisecond)
	}
	return cg, nil
}

// cgroupOf returns the manager of the container's cgroup name: the one Create made, in the
// process that created the container, else a new one, which reads the host's cgroup mounts
// again (0.15-0.2 ms).
func (c *Container) cgroupOf(name string) (cgroups.Manager, error) {
	if c.cg != nil && c.cgName == name {
		return c.cg, nil
	}
	cg, err := cgroups.New(name)
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", name, err)
	}
	return cg, nil
}

// cgroup opens the cgroup recorded in state.json.
func (st *stateFile) cgroup() (cgroups.Manager, error) {
	cg, err := cgroups.New(st.Cgroup)
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", st.Cgroup, err)
	}
	return cg, nil
}
