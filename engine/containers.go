package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/engine/internal/gate"
	"bulwark.dev/bulwark/errdefs"
	"bulwark.dev/bulwark/internal/atomicfile"
	"bulwark.dev/bulwark/internal/names"
	"bulwark.dev/bulwark/internal/plainfile"
	"bulwark.dev/bulwark/policy/document"
	"bulwark.dev/bulwark/sandbox"
)

// Meta is the engine's record of a container, <root>/engine/<id>/meta.json, beside the
// sandbox's own state (containers/<id>/state.json), which the sandbox owns and removes.
type Meta struct {
	ID        string    `json:"id"`
	Name      string    `json:"name,omitempty"`
	Tenant    string    `json:"tenant"`
	UID       int       `json:"uid"`
	RequestID string    `json:"requestId"`
	Image     ImageRef  `json:"image"`
	Args      []string  `json:"args"`
	Created   time.Time `json:"created"`
	Started   time.Time `json:"started,omitzero"`
	Pid       int       `json:"pid,omitempty"`
	// PidStart is init's start time (with Pid, it names the process for good).
	PidStart uint64 `json:"pidStart,omitempty"`
	// Client is the process of a foreground run, which the supervisor watches.
	Client   *Process `json:"client,omitempty"`
	Detached bool     `json:"detached"`
	Remove   bool     `json:"autoRemove"`
	// LogMaxFiles is how many rotated log files are kept beside container.log.
	LogMaxFiles int   `json:"logMaxFiles,omitempty"`
	LogMaxSize  int64 `json:"logMaxSize,omitempty"`
	// Restart is the restart policy; RestartCount how often the container was started again.
	Restart      RestartPolicy `json:"restart,omitzero"`
	RestartCount int           `json:"restartCount,omitempty"`
	// Policy is where the run's decision came from; an exec is decided under the same one.
	Policy PolicySource `json:"policy,omitzero"`
	// Resources are what the container holds against its tenant's quotas (quota.go).
	Resources *Resources `json:"resources,omitempty"`
	Exit      *ExitInfo  `json:"exit,omitempty"`
}

// Container is what ps and inspect show: the engine's record and the sandbox's live state.
type Container struct {
	Meta
	Status string         `json:"status"`
	State  *sandbox.State `json:"state,omitempty"`
}

// ErrNotFound is returned for an id the engine has no record of, and for a container of another
// tenant than the caller's, with the same text (see lookup).
var ErrNotFound = errdefs.New(errdefs.ErrNotFound, "no such container")

// Caller is who asks for an operation on an existing container: the identity the audit records
// and the tenant it acts for (empty: the default tenant). A container answers only to its owner's
// tenant.
type Caller struct {
	Identity
	Tenant string
}

func (c Caller) tenant() string {
	if c.Tenant == "" {
		return sandbox.DefaultTenant
	}
	return c.Tenant
}

// LogPath is the container's log file (detached containers).
func (e *Engine) LogPath(id string) string { return filepath.Join(e.metaDir(id), "container.log") }

// ReadLogs calls fn for every entry of a container's log, rotated files included, oldest first.
func (e *Engine) ReadLogs(id string, who Caller, fn func(LogEntry) error) error {
	m, err := e.lookup(id, who, "logs")
	if err != nil {
		return err
	}
	return ReadLogs(e.LogPath(id), m.LogMaxFiles, fn)
}

// ReadLogsUpTo is ReadLogs for a reader that goes on following the log: the current file is cur,
// opened by the caller, read to size bytes only (ReadLogsUpTo, package level).
func (e *Engine) ReadLogsUpTo(id string, who Caller, cur *os.File, size int64, fn func(LogEntry) error) error {
	m, err := e.lookup(id, who, "logs")
	if err != nil {
		return err
	}
	return ReadLogsUpTo(e.LogPath(id), m.LogMaxFiles, cur, size, fn)
}

func (e *Engine) writeMeta(m *Meta) error {
	b, err := marshalMeta(m)
	if err != nil {
		return fmt.Errorf("encode container record: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(e.metaDir(m.ID), "meta.json"), b, atomicfile.Options{}); err != nil {
		return fmt.Errorf("write container record: %w", err)
	}
	return nil
}

func (e *Engine) readMeta(id string) (*Meta, error) {
	if !names.Object(id) {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	b, err := plainfile.ReadFile(filepath.Join(e.metaDir(id), "meta.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	m := &Meta{}
	if err := json.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("container record %s: %w", id, err)
	}
	return m, nil
}

// owner is the tenant that owns the container.
func (m *Meta) owner() string {
	if m.Tenant == "" {
		return sandbox.DefaultTenant
	}
	return m.Tenant
}

// lookup returns the record of container id for who, doing operation on it: the engine's one
// place of ownership. A container of another tenant is answered exactly as a missing one (the
// same ErrNotFound text), so a tenant learns nothing of another's containers, not even that one
// exists; the refusal is audited (caller's tenant, operation, owner) before it is returned. The
// sandbox applies the same rule to its own state, for the Runtime opened with the caller's tenant.
func (e *Engine) lookup(id string, who Caller, operation string) (*Meta, error) {
	m, err := e.readMeta(id)
	if err != nil {
		return nil, err
	}
	owner := m.owner()
	if owner == who.tenant() {
		e.ensureSupervised(m)
		return m, nil
	}
	t := newTrail(e.audit, who.Identity, who.tenant(), NewID())
	t.SetContainer(id)
	t.Add(audit.TypeContainer, sandbox.EventAccessRefused, map[string]string{"operation": operation, "owner": owner})
	notFound := fmt.Errorf("%w: %s", ErrNotFound, id)
	if err := t.Flush(); err != nil {
		return nil, errors.Join(notFound, fmt.Errorf("the refusal was not audited: %w", err))
	}
	return nil, notFound
}

// Inspect returns one container of who's tenant.
func (e *Engine) Inspect(id string, who Caller) (*Container, error) {
	m, err := e.lookup(id, who, "inspect")
	if err != nil {
		return nil, err
	}
	return e.inspect(m)
}

// inspect adds the sandbox's live state to a container's record.
func (e *Engine) inspect(m *Meta) (*Container, error) {
	id := m.ID
	c := &Container{Meta: *m, Status: "removing"}
	rt, err := e.runtime(m.Tenant, nil)
	if err != nil {
		return nil, err
	}
	if sc, err := rt.Load(id); err == nil {
		if st, err := sc.State(); err == nil {
			c.State = &st
			c.Status = string(st.Status)
		}
	}
	if c.State == nil && m.Started.IsZero() {
		c.Status = "creating"
	}
	return c, nil
}

// List returns every container of who's tenant the engine has a record of, newest first.
// Another tenant's containers are left out (not audited: listing accesses none of them).
func (e *Engine) List(who Caller) ([]*Container, error) {
	e.removeDeadClaims()
	names, err := e.recordNames()
	if err != nil {
		return nil, err
	}
	var out []*Container
	for _, name := range names {
		m, err := e.readMeta(name)
		if err != nil {
			continue // a record being created or removed right now
		}
		// A container of any tenant that lost its supervisor gets one before it is listed.
		e.ensureSupervised(m)
		if m.owner() != who.tenant() {
			continue
		}
		c, err := e.inspect(m)
		if err != nil {
			continue
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// op runs one lifecycle operation on a container of who's tenant with its audit trail.
func (e *Engine) op(id string, who Caller, action string, fn func(*sandbox.Container, *Meta, *trail) (map[string]string, error)) error {
	m, err := e.lookup(id, who, action)
	if err != nil {
		return err
	}
	t := newTrail(e.audit, who.Identity, m.Tenant, NewID())
	t.SetContainer(id)
	t.SetImage(m.Image.Digest)
	rt, err := e.runtime(m.Tenant, t)
	if err != nil {
		return err
	}
	c, err := rt.Load(id)
	if err != nil && !errors.Is(err, sandbox.ErrNotExist) {
		return err
	}
	attrs, err := fn(c, m, t)
	if err != nil {
		t.Add(audit.TypeContainer, action+".failed", map[string]string{"error": err.Error()})
	} else if attrs != nil {
		t.Add(audit.TypeContainer, action, attrs)
	}
	return errors.Join(err, t.Flush())
}

func needContainer(c *sandbox.Container, m *Meta) error {
	if c == nil {
		return fmt.Errorf("%w: %s has no sandbox (it was never created or is being removed)", sandbox.ErrNotExist, m.ID)
	}
	return nil
}

// Kill sends sig to the container's init (all: to every process).
func (e *Engine) Kill(id string, who Caller, sig syscall.Signal, all bool) error {
	return e.op(id, who, "signal", func(c *sandbox.Container, m *Meta, _ *trail) (map[string]string, error) {
		if err := needContainer(c, m); err != nil {
			return nil, err
		}
		return map[string]string{"signal": sig.String(), "all": strconv.FormatBool(all)}, c.Signal(sig, all)
	})
}

// Stop sends SIGTERM, waits up to timeout for the container to stop, then SIGKILLs every process.
func (e *Engine) Stop(id string, who Caller, timeout time.Duration) error {
	return e.op(id, who, "stop", func(c *sandbox.Container, m *Meta, _ *trail) (map[string]string, error) {
		if err := needContainer(c, m); err != nil {
			return nil, err
		}
		// Its restart policy leaves it stopped (until start or restart).
		if err := e.stopAndWait(id); err != nil {
			return nil, err
		}
		if stopped(c) {
			return map[string]string{"already": "stopped"}, nil
		}
		if err := c.Signal(syscall.SIGTERM, false); err != nil && !stopped(c) {
			return nil, err
		}
		deadline := time.Now().Add(timeout)
		for !stopped(c) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if stopped(c) {
			return map[string]string{"signal": "SIGTERM"}, nil
		}
		if err := c.Signal(syscall.SIGKILL, true); err != nil && !stopped(c) {
			return nil, err
		}
		for i := 0; i < 250 && !stopped(c); i++ {
			time.Sleep(20 * time.Millisecond)
		}
		return map[string]string{"signal": "SIGKILL", "timeout": timeout.String()}, nil
	})
}

func stopped(c *sandbox.Container) bool {
	st, err := c.State()
	return err != nil || st.Status == specs.ContainerState(sandbox.StatusStopped)
}

// Pause freezes the container; Unpause thaws it.
func (e *Engine) Pause(id string, who Caller) error {
	return e.op(id, who, "pause", func(c *sandbox.Container, m *Meta, _ *trail) (map[string]string, error) {
		if err := needContainer(c, m); err != nil {
			return nil, err
		}
		return map[string]string{}, c.Pause()
	})
}

// Unpause thaws a paused container.
func (e *Engine) Unpause(id string, who Caller) error {
	return e.op(id, who, "resume", func(c *sandbox.Container, m *Meta, _ *trail) (map[string]string, error) {
		if err := needContainer(c, m); err != nil {
			return nil, err
		}
		return map[string]string{}, c.Resume()
	})
}

// RemoveOptions are docker rm's: Force removes a running container (killed first), Volumes
// its anonymous volumes too (-v).
type RemoveOptions struct {
	Force   bool
	Volumes bool
}

// Remove deletes a container; a running one only with Force. The sandbox records the delete.
func (e *Engine) Remove(id string, who Caller, opts RemoveOptions) error {
	return e.op(id, who, "remove", func(c *sandbox.Container, m *Meta, _ *trail) (map[string]string, error) {
		if c != nil {
			if opts.Force {
				// No restart policy starts it again while it goes; one being started is removed
				// once its start is over.
				if err := e.stopAndWait(id); err != nil {
					return nil, err
				}
			}
			if st, err := c.State(); !opts.Force && err == nil && st.Status != specs.ContainerState(sandbox.StatusStopped) {
				// Said as it is: a container being created is not "running".
				return nil, errdefs.Errorf(errdefs.ErrConflict, "container %s is %s: stop it first or use --force", id, st.Status)
			}
			if err := c.Delete(true); err != nil {
				return nil, fmt.Errorf("delete %s: %w", id, err)
			}
			if m.Detached {
				e.awaitUnsupervised(id)
			}
		}
		if err := e.detachNetwork(m.Tenant, id); err != nil {
			return nil, err
		}
		spec, specErr := e.readEffectiveSpec(id)
		if err := e.removeStateDir(id); err != nil {
			return nil, err
		}
		if opts.Volumes && specErr == nil {
			return nil, e.removeAnonymousVolumes(m, spec)
		}
		return nil, nil
	})
}

// Stats reads the cgroup of a container of who's tenant.
func (e *Engine) Stats(id string, who Caller) (*sandbox.Stats, error) {
	m, err := e.lookup(id, who, "stats")
	if err != nil {
		return nil, err
	}
	rt, err := e.runtime(m.Tenant, nil)
	if err != nil {
		return nil, err
	}
	c, err := rt.Load(id)
	if err != nil {
		return nil, err
	}
	return c.Stats()
}

// ExecRequest is a process to start in a running container.
type ExecRequest struct {
	Identity Identity
	// Tenant is the tenant the caller acts for: only its containers can be exec'd into.
	Tenant  string
	Args    []string
	Env     []string
	Workdir string
	User    string
	// TTY runs the process on a terminal of its own, whose master goes to the console socket
	// of the stdio Exec is given (whatever the container's own process has).
	TTY bool
	// TTYRows and TTYCols are the terminal's first size (0: the kernel's default).
	TTYRows, TTYCols uint16
}

// Exec decides (operation "exec") and starts a process in a running container, with the
// container's own confinement, and waits for it. It returns the process's exit status.
func (e *Engine) Exec(ctx context.Context, id string, req ExecRequest, stdio sandbox.IO) (int, error) {
	if len(req.Args) == 0 {
		return -1, errors.New("exec: no command")
	}
	code := -1
	err := e.op(id, Caller{Identity: req.Identity, Tenant: req.Tenant}, "exec", func(c *sandbox.Container, m *Meta, t *trail) (map[string]string, error) {
		if err := needContainer(c, m); err != nil {
			return nil, err
		}
		if src := e.policySource(); src != m.Policy {
			// Deciding an exec under another policy (by default the embedded one) would let the
			// caller pick the rules a container answers to.
			return nil, errdefs.Errorf(errdefs.ErrConflict, "container %s was decided under another policy: exec it under the same policy (%s), not %s",
				id, m.Policy.Flags(), src.Flags())
		}
		spec, err := e.readEffectiveSpec(id)
		if err != nil {
			return nil, err
		}
		p := *spec.Process
		p.Args = req.Args
		p.Env = mergeEnv(spec.Process.Env, req.Env)
		p.Terminal, p.ConsoleSize = req.TTY, nil
		if req.TTY && req.TTYRows > 0 && req.TTYCols > 0 {
			p.ConsoleSize = &specs.Box{Height: uint(req.TTYRows), Width: uint(req.TTYCols)}
		}
		if req.Workdir != "" {
			p.Cwd = req.Workdir
		}
		if req.User != "" {
			root, err := e.layersRoot(m.Image.Layers)
			if err != nil {
				return nil, err
			}
			p.User, err = resolveUser(root, req.User)
			root.Close()
			if err != nil {
				return nil, err
			}
		}
		spec.Annotations[AnnotationRequest] = t.RequestID()
		spec.Process = &p
		rt, err := e.runtime(m.Tenant, t)
		if err != nil {
			return nil, err
		}
		// The recorded spec's bind sources are the real paths its mounts were made from.
		if _, err := gate.Decide(ctx, gate.Request{
			Runtime: rt, Spec: spec, Trail: t.Trail,
			Context: document.Context{
				Tenant: m.Tenant, Operation: document.OpExec, BindsResolved: true, StateRoot: e.cfg.Root,
				Identity: document.Identity{UID: uint32(req.Identity.UID), GID: uint32(req.Identity.GID), Principal: req.Identity.Principal},
				Image:    &document.Image{Reference: m.Image.Reference, Digest: m.Image.Digest, Verified: true},
			},
			Decide: func(ctx context.Context, preq *document.Request, digest string) (document.Decision, error) {
				return e.decide(ctx, preq, digest, t)
			},
		}); err != nil {
			return nil, err
		}
		// The decision is durable before the process it allows runs, as a run's is before its
		// workload starts: a failed append refuses the exec.
		if err := t.Flush(); err != nil {
			return nil, err
		}
		proc, err := c.Exec(&p, stdio)
		if err != nil {
			return nil, err
		}
		t.Add(audit.TypeContainer, "exec.start", map[string]string{"pid": strconv.Itoa(proc.Pid), "args": gate.JSONString(p.Args)})
		if err := t.Flush(); err != nil {
			return nil, err
		}
		code, err = proc.Wait()
		return map[string]string{"pid": strconv.Itoa(proc.Pid), "code": strconv.Itoa(code)}, err
	})
	return code, err
}

// Mounts are the mounts of who's container id as it was created (its effective spec): volumes by
// the path of their data, binds by their resolved source.
func (e *Engine) Mounts(id string, who Caller) ([]specs.Mount, error) {
	if _, err := e.lookup(id, who, "inspect"); err != nil {
		return nil, err
	}
	s, err := e.readEffectiveSpec(id)
	if err != nil {
		return nil, err
	}
	return s.Mounts, nil
}

// readEffectiveSpec reads the effective spec recorded when the container was created (its plan's).
func (e *Engine) readEffectiveSpec(id string) (*specs.Spec, error) {
	var plan struct {
		Spec *specs.Spec `json:"effectiveSpec"`
	}
	b, err := plainfile.ReadFile(filepath.Join(e.metaDir(id), "plan.json"))
	if err == nil {
		if err = json.Unmarshal(b, &plan); err == nil && plan.Spec == nil {
			err = errors.New("no effective spec in the plan")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("read effective spec of %s: %w", id, err)
	}
	s := plan.Spec
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	return s, nil
}

// removeStateDir removes a container's state directory. The supervisor's worker may still be
// writing its last record there (the exit status, the attach socket going away) when a removal
// starts; RemoveAll then finds a new entry and fails with ENOTEMPTY, so it is tried again for a
// while. Every such writer writes only into an existing directory, so none recreates it.
func (e *Engine) removeStateDir(id string) error {
	var err error
	for range 50 {
		if err = os.RemoveAll(e.metaDir(id)); !errors.Is(err, unix.ENOTEMPTY) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("remove %s state: %w", id, err)
	}
	return nil
}
