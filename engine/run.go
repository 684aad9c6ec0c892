package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/sandbox"
)

// runtime opens the sandbox runtime for a tenant; with a trail, the sandbox's events join it.
func (e *Engine) runtime(tenant string, t *trail) (*sandbox.Runtime, error) {
	return e.runtimeFor(tenant, t, false, nil)
}

// runtimeFor is runtime for a container that policy granted a writable root, if writableRoot;
// with a clock, the sandbox's steps join its steps.
func (e *Engine) runtimeFor(tenant string, t *trail, writableRoot bool, clk *stepClock) (*sandbox.Runtime, error) {
	// The sandbox's state of each container is runtime state (tmpfs, RunRoot); the id ranges
	// and MAC labels it hands out, and its compiled seccomp programs, are the state root's.
	opts := sandbox.Options{Root: e.cfg.RunRoot, IDMapDir: filepath.Join(e.cfg.Root, "idmap"), SELinuxDir: filepath.Join(e.cfg.Root, "selinux"),
		SeccompCacheDir: filepath.Join(e.cfg.Root, "seccomp-cache"), Tenant: tenant, AllowNoMAC: e.cfg.AllowNoMAC, WritableRoot: writableRoot}
	if t != nil {
		opts.Events = t
	}
	if clk != nil {
		opts.Steps = clk
	}
	rt, err := sandbox.New(opts)
	if err != nil {
		return nil, err
	}
	if t != nil {
		t.mu.Lock()
		t.rt = rt
		t.mu.Unlock()
	}
	return rt, nil
}

// Running is a started container, in the process that created it (the only one that can
// collect its exit status).
type Running struct {
	e     *Engine
	plan  *Plan
	c     *sandbox.Container
	meta  *Meta
	Pid   int
	trail *trail
	clock *stepClock
}

// ID is the container id.
func (r *Running) ID() string { return r.plan.ID }

// Start creates and starts the container of an allowed plan; ctx bounds the creation. On any
// failure everything created so far is removed and the failure audited. A foreground run (not
// Detach) is watched by the state root's supervisor when the engine has one (Config.Monitor):
// if this process dies without recording the container's exit, the container dies with it.
func (e *Engine) Start(ctx context.Context, plan *Plan, stdio sandbox.IO) (*Running, error) {
	return e.start(ctx, plan, stdio, nil)
}

// start is Start; with prev, the stopped container of that record is started again (its record,
// logs and name kept).
func (e *Engine) start(ctx context.Context, plan *Plan, stdio sandbox.IO, prev *Meta) (*Running, error) {
	defer plan.Close()
	if !plan.Decision.Allow || plan.trail == nil {
		return nil, errors.New("start: the plan was not allowed by policy")
	}
	if plan.binds == nil {
		// Mounting from paths walked again would undo the decision (issue: bind source raced).
		return nil, errors.New("start: the plan's bind sources were not resolved")
	}
	t := plan.trail
	restart, _ := ParseRestartPolicy(plan.Request.Restart)
	meta := &Meta{
		ID: plan.ID, Name: plan.Request.Name, Tenant: plan.Request.Tenant, RequestID: plan.Request.ID,
		Image: plan.Image, Args: plan.Spec.Process.Args, Created: time.Now().UTC(),
		Detached: plan.Request.Detach, Remove: plan.Request.Remove, UID: plan.Request.Identity.UID,
		LogMaxSize: plan.Request.LogMaxSize, LogMaxFiles: plan.Request.LogMaxFiles, Policy: plan.Policy, Restart: restart,
		Resources: new(plan.Resources()),
	}
	watched := !meta.Detached && len(e.cfg.Monitor) > 0
	if watched {
		meta.Client = self()
	}
	var (
		dir string
		err error
	)
	if prev != nil {
		meta, dir = prev, e.metaDir(prev.ID)
		meta.Detached, meta.Client, meta.Exit, meta.Pid, meta.PidStart = true, nil, nil, 0, 0
		meta.Started = time.Time{}
		meta.RestartCount++
		err = e.writeMeta(meta)
	} else {
		// A foreground --rm record never outlives its client (nor, if the client dies, the
		// supervisor's watch): the run root keeps it. A writable root's upper filesystem image
		// is kept beside the record, on the state root's disk.
		dir, err = e.createMeta(meta, meta.Remove && !meta.Detached && plan.WritableRootSize == 0)
	}
	if err != nil {
		t.Add(audit.TypeContainer, "create.failed", map[string]string{"error": err.Error()})
		return nil, errors.Join(err, t.Flush())
	}
	// Opened once the record claims the container: the run root it makes is not tidied away
	// under it (tidyRunRoot).
	rt, err := e.runtimeFor(plan.Request.Tenant, t, plan.WritableRootSize > 0, plan.clock)
	if err != nil {
		t.Add(audit.TypeContainer, "create.failed", map[string]string{"error": err.Error()})
		if prev == nil {
			os.RemoveAll(dir)
		}
		return nil, errors.Join(err, t.Flush())
	}
	// The client's watch is asked for while the sandbox is created, and in place before the
	// workload runs.
	var watch chan error
	if watched {
		watch = make(chan error, 1)
		go func() { watch <- e.superviseForeground(plan.ID) }()
	}
	// plan.json is written while the sandbox is created (below); awaited before the record
	// directory can be removed and before the workload runs, which is when exec may read it.
	var planWritten chan error
	awaitPlan := func() error {
		if planWritten == nil {
			return nil
		}
		err := <-planWritten
		planWritten = nil
		return err
	}
	fail := func(err error) (*Running, error) {
		if watch != nil {
			<-watch
		}
		if perr := awaitPlan(); perr != nil {
			err = errors.Join(err, perr)
		}
		if c, lerr := rt.Load(plan.ID); lerr == nil {
			c.Delete(true)
		}
		if derr := e.detachNetwork(plan.Request.Tenant, plan.ID); derr != nil {
			err = errors.Join(err, derr)
		}
		if prev != nil {
			// A restart keeps the record and the logs: the container stays stopped, and why.
			meta.Exit = &ExitInfo{Code: ExitStatus(err), Finished: time.Now().UTC(), Error: "restart failed: " + err.Error()}
			err = errors.Join(err, e.writeMeta(meta))
		} else {
			os.RemoveAll(dir)
		}
		t.Add(audit.TypeContainer, "create.failed", map[string]string{"error": err.Error()})
		return nil, errors.Join(err, t.Flush())
	}
	// The image's layers as verified and unpacked: the sandbox stacks them; the mountpoints this
	// container needs go to its private upper, so nothing of the image is copied.
	root := &imageRoot{rfs: plan.layers}
	if root.rfs == nil {
		if root, err = e.layersRoot(plan.Image.Layers); err != nil {
			return fail(err)
		}
	}
	// start and restart start it again from the decided plan; exec gives new processes its
	// effective spec's confinement (readEffectiveSpec). One file: each made and removed on the
	// state root's disk is a journalled operation on the run's path. It is encoded and written
	// while the sandbox is created (0.2-0.3 ms of the run's path): the sandbox only reads the
	// spec (its floor works on a copy), and nothing of the plan it encodes changes meanwhile.
	planWritten = make(chan error, 1)
	go func() { planWritten <- writePlan(dir, plan) }()
	// The decision's records are appended while the sandbox is being created (which takes far
	// longer than an fsync); the workload is released only once they are durable.
	t.FlushAsync()
	clk := plan.clock
	clk.lap("records")
	var c *sandbox.Container
	switch {
	case plan.WritableRootSize > 0:
		c, err = e.createWritable(ctx, rt, plan, dir, root.rfs.Lower, stdio)
	case plan.floor != nil: // decided in this process: created exactly as decided
		c, err = rt.CreateFlooredFromLayers(ctx, plan.ID, dir, plan.floor, root.rfs.Lower, nil, stdio)
	default:
		c, err = rt.CreateFromLayers(ctx, plan.ID, dir, plan.Spec, root.rfs.Lower, plan.binds, stdio)
	}
	if err != nil {
		return fail(err)
	}
	if err := awaitPlan(); err != nil {
		return fail(err)
	}
	// Whom Create started, as it recorded it: State would read and decode state.json and ask
	// /proc again (0.15-0.2 ms of the run's path).
	pid, pidStart, err := c.Init()
	if err != nil {
		return fail(err)
	}
	t.mu.Lock()
	t.pid, t.ctr = pid, c
	t.mu.Unlock()
	clk.lap("create")
	if err := e.attachNetwork(ctx, plan, pid, t); err != nil {
		return fail(err)
	}
	if err := t.WaitAsync(); err != nil {
		return fail(err)
	}
	if watch != nil {
		err := <-watch
		watch = nil
		if err != nil {
			return fail(fmt.Errorf("the supervisor cannot watch this run: %w", err))
		}
	}
	clk.lap("ready")
	if err := c.Start(); err != nil {
		return fail(err)
	}
	meta.Started = time.Now().UTC()
	meta.Pid = pid
	meta.PidStart = pidStart
	if err := e.writeMeta(meta); err != nil {
		return fail(err)
	}
	// The create and start records are written while the workload runs; Wait reports a
	// failure to.
	t.FlushAsync()
	clk.lap("start")
	return &Running{e: e, plan: plan, c: c, meta: meta, Pid: pid, trail: t, clock: clk}, nil
}

// AuditWait is how long the request has been blocked on audit appends so far.
func (r *Running) AuditWait() time.Duration {
	return r.trail.Waited()
}

// Signal forwards a signal to the container's init.
func (r *Running) Signal(sig unix.Signal) error { return r.c.Signal(sig, false) }

// Kill SIGKILLs every process of the container.
func (r *Running) Kill() error {
	r.trail.Add(audit.TypeContainer, "signal", map[string]string{"signal": "SIGKILL", "all": "true", "reason": "repeated interrupt"})
	return r.c.Signal(unix.SIGKILL, true)
}

// Wait waits for the workload to exit, records how it ended and, for --rm, removes the
// container. It returns the workload's exit status.
func (r *Running) Wait() (*ExitInfo, error) {
	code, err := r.c.Wait()
	info := r.trail.exitInfo()
	if info == nil {
		info = &ExitInfo{Code: code, Finished: time.Now().UTC()}
	}
	r.meta.Exit = info
	var werr error
	if r.plan.Request.Remove {
		// --rm: the record goes with the container, so how the workload ended is written to it
		// only if the removal fails and leaves it. (A client killed before the removal is done
		// leaves a record without an exit: its supervisor's watch then collects the container
		// and removes it.) The effective spec, for the anonymous volumes, is the plan's.
		r.clock.lap("wait")
		if derr := r.e.remove(r.c, r.meta, r.plan.Spec); derr != nil {
			werr = errors.Join(derr, r.e.writeMeta(r.meta))
		}
		r.clock.lap("remove")
	} else {
		werr = r.e.writeMeta(r.meta)
		r.clock.lap("wait")
	}
	if ferr := r.trail.Flush(); ferr != nil {
		werr = errors.Join(werr, ferr)
	}
	r.clock.lap("flush")
	return info, errors.Join(err, werr)
}

// remove deletes the sandbox (cgroup, id range, state; c nil: none is left) and the engine's own
// state. spec is the container's effective spec as recorded (nil: read from its record).
func (e *Engine) remove(c *sandbox.Container, m *Meta, spec *specs.Spec) error {
	if c != nil {
		if err := c.Delete(true); err != nil {
			return fmt.Errorf("delete %s: %w", m.ID, err)
		}
	}
	if err := e.detachNetwork(m.Tenant, m.ID); err != nil {
		return err
	}
	var specErr error
	if spec == nil {
		spec, specErr = e.readEffectiveSpec(m.ID)
	}
	if err := e.removeStateDir(m.ID); err != nil {
		return err
	}
	if m.Remove && specErr == nil {
		// --rm takes the anonymous volumes (the image's VOLUME paths) with the container.
		return e.removeAnonymousVolumes(m, spec)
	}
	return nil
}

// writePlan keeps the plan in the container's record directory dir (plan.json).
func writePlan(dir string, p *Plan) error {
	b, err := marshalPlan(p)
	if err != nil {
		return fmt.Errorf("encode plan.json: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "plan.json"), b, 0o600); err != nil {
		return fmt.Errorf("write plan.json: %w", err)
	}
	return nil
}
