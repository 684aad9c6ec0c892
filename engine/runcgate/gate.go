// Package runcgate is the policy gate of bulwark-runc: each create, run and exec is decided by the
// policy engine on the effective spec (the floor applied) before anything is created, and each
// decision is appended to the audit log under the persistent state root. It is engine's
// composition for the runc-compatible CLI, kept apart from engine so that the runtime binary —
// which the sandbox re-executes as every container's init — does not link the image store, TUF
// and registry clients (measured per exec of the binary: 4.7 ms without policy, 8.3 ms linking
// engine, 6.2 ms linking this package).
package runcgate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/engine/internal/evalproto"
	"bulwark.dev/bulwark/engine/internal/gate"
	"bulwark.dev/bulwark/policy/document"
	"bulwark.dev/bulwark/sandbox"
)

// containerd, Docker and the OCI tools drive the runtime binary directly, one process per
// operation. A request the decision cache (policy/document) answers is decided without the
// policy; any other is decided by the policy evaluator, bulwark-policy (engine/runcgate/evaluator),
// executed for that request only: it loads and prepares the policy (the cold path, ≈ 6–10 ms, the
// price of no daemon) and answers each decision the request needs. The runtime binary links no
// OPA, whose package initialisation and size cost every start of it, cached or not. Decisions go
// to the audit log under the persistent state root, in the same events as `bulwark run`'s; any
// failure of the evaluator refuses the request.

// Config says where bulwark-runc's policy comes from and where its decisions are kept.
type Config struct {
	// StateRoot is the persistent state root (not runc's --root, which is under /run): the
	// accepted bundle revision (<root>/policy) and the audit log (<root>/audit) must survive a
	// reboot, or a replayed old bundle and an unaudited create would pass unnoticed.
	StateRoot string
	// PolicyDir or PolicyBundle (verified with the public key in PolicyKeyFile) select the
	// policy; neither: the embedded default.
	PolicyDir     string
	PolicyBundle  string
	PolicyKeyFile string
	// DockerRoot is dockerd's data root (its --data-root) when bulwark-runc serves dockerd: a
	// bind of one of its named volumes (<DockerRoot>/volumes/NAME/_data) is then shown to
	// policy as a Docker volume and, allowed writable, adopted into the storage range. Empty:
	// such a bind is a host path like any other.
	DockerRoot string
	// UID and GID are the caller's: policy sees them and the audit records the uid.
	UID, GID int
	// Evaluator decides what the decision cache cannot answer; nil: bulwark-policy beside the
	// running binary (tests: evaluator.InProcess).
	Evaluator *evalproto.Evaluator
}

// Request is one bulwark-runc create (or run) or exec.
type Request struct {
	// Operation is document.OpCreate or document.OpExec.
	Operation   document.Operation
	Tenant      string
	ContainerID string
	// Bundle is the absolute bundle directory; relative bind sources resolve against it.
	Bundle string
	// Spec is the bundle's config.json as requested (before the floor).
	Spec *specs.Spec
	// Process, for exec, is the process to start in the container.
	Process *specs.Process
	// Pod, for exec, is the pod the container's record names (sandbox.State.Pod).
	Pod string
}

// Decision is a decided request: Decide returns it for an allowed request, and with the
// *document.DeniedError of a denied one.
type Decision struct {
	// Spec is the request as decided (CreateResolved with Binds floors it again): bind sources
	// replaced by the real paths of the descriptors policy judged (so nothing swapped after the
	// decision can redirect a mount) and the policy's constraints applied to its resources. Nil
	// for exec.
	Spec *specs.Spec
	// Binds are the descriptors the bind sources were resolved to; the caller closes them
	// (Close) once the container is created. Nil for exec.
	Binds *sandbox.BindSources
	// Floor is the floor's result policy decided on, its constraints applied: what to hand to
	// sandbox CreateFloored, which creates exactly it without flooring Spec again. Nil for exec.
	Floor       *sandbox.FloorResult
	Decision    document.Decision
	InputDigest string
	// Constraints are the limits policy made stricter than the effective spec's.
	Constraints []sandbox.Raise
	// Hooks are the spec's hooks policy allowed, opened (the caller runs them with RunHooks,
	// records them with SaveHooks and closes them). Nil for exec.
	Hooks Hooks
	// Timing of the gate's steps (the runtime's debug log shows them): SessionWait is what the
	// session's start (Begin) cost the decision after its request was floored and its document
	// built (none when the goroutine had published it; its making otherwise); Audit, how long
	// Durable waited for the append that overlapped Create, is known after it.
	Load, Prepare, SessionWait, Audit time.Duration
	// Cached says the decision came from the decision cache (document.Cache): the policy
	// was neither loaded nor prepared.
	Cached bool

	durable    func() error
	once       sync.Once
	durableErr error
}

// A Session is what deciding a request needs and does not depend on the request: the audit log
// opened, the evaluator's file checked and the decision cache opened for it and the policy
// source (a directory's files digested). Begin starts it in the background while the caller
// reads its bundle, and the session's Decide floors the request and builds its document in the
// meantime; the session is needed only to look the document up (or to append to the audit log).
// The decision uses the start the background goroutine has published if it has; otherwise it
// makes one itself, without waiting for the goroutine (on this project's two vCPUs the other
// one's wake-up often came after the main path needed the session, and under load the goroutine
// could lose its core halfway through its start, holding up a decision that waited for it): the
// first start made is published and the other, if one is made meanwhile, released (start). Each
// is done exactly as Decide did it before, and what is checked again after the decision (the
// evaluator's file before it is executed, a policy directory's digest before a decision is
// stored) still is.
type Session struct {
	cfg       Config
	requestID string
	// started is the session's start once published (start), or the refusal close publishes
	// if nothing was.
	started atomic.Pointer[sessionStart]
	// background says Begin started a goroutine for the session; without one (newSession) the
	// trail starts a goroutine for the decision's asynchronous audit append.
	background bool
	// flush is the decision's asynchronous audit append (Trail.SetAsync) once it is queued, and
	// flushClaimed is set by whoever makes it: the goroutine Begin started, which looks for it
	// about every millisecond once the session has started (runFlushes), or the decision's
	// Durable if it comes first. The goroutine is not parked on a channel: the decision's path
	// would pay its wake-up (a futex wake and the other vCPU's interrupt: 10-130 us of the policy
	// step on this project's VM when the goroutine had finished first); a timer on its own core
	// wakes it instead. ended, set by close, ends it if no append came (a refusal is appended by
	// the request itself).
	flush        atomic.Pointer[func()]
	flushClaimed atomic.Bool
	ended        atomic.Bool
	// root is cfg.StateRoot resolved for the request document once published (stateRoot).
	root atomic.Pointer[resolvedRoot]
}

// sessionStart is what a session's start makes: err refuses the request (no audit log, a
// relative state root); ev decides what cache cannot (cache nil: nothing is cached), and everr
// refuses any request the cache cannot answer.
type sessionStart struct {
	err   error
	log   *audit.Log
	ev    *evalproto.Evaluator
	everr error
	cache *document.Cache
}

// release closes what a start opened.
func (st *sessionStart) release() {
	if st.log != nil {
		st.log.Close()
	}
	if st.cache != nil {
		st.cache.Close()
	}
}

// resolvedRoot is a state root resolved (document.ResolveHostPath).
type resolvedRoot struct {
	path string
	err  error
}

// stateRoot is cfg.StateRoot resolved (document.ResolveHostPath) for the request document: the
// resolution published by the goroutine Begin started or by the decision, whichever finished
// first; neither waits for the other (as start).
func (s *Session) stateRoot() (string, error) {
	if r := s.root.Load(); r != nil {
		return r.path, r.err
	}
	path, err := document.ResolveHostPath(s.cfg.StateRoot)
	s.root.CompareAndSwap(nil, &resolvedRoot{path, err})
	r := s.root.Load()
	return r.path, r.err
}

// Begin starts the session of one request decided with the policy cfg selects. Its Decide must
// be called once; until then it holds the audit log open.
func Begin(cfg Config) *Session {
	s := newSession(cfg)
	s.background = true
	go func() {
		s.start()
		// Then what the decision's path needs and does not depend on the request: the floor's
		// reading of the host's MAC layers and the request document's state root (the path
		// does either itself if it gets there first, as before).
		sandbox.DetectHost()
		s.stateRoot() //nolint:errcheck // the decision reports it
		// Then this goroutine makes the decision's audit append, which overlaps the sandbox's
		// creation (Trail.SetAsync), and ends.
		for !s.ended.Load() && !s.flushClaimed.Load() {
			if s.runFlush() {
				return
			}
			time.Sleep(flushPoll)
		}
	}()
	return s
}

// flushPoll is how often the session's goroutine looks for the decision's audit append. The
// runtime's timers wake an idle core at millisecond granularity, so the append starts within
// about a millisecond of the decision; a create takes several before its Durable.
const flushPoll = time.Millisecond

// runFlush makes the decision's audit append if it is queued and nobody has claimed it, and
// reports whether it did.
func (s *Session) runFlush() bool {
	f := s.flush.Load()
	if f == nil || !s.flushClaimed.CompareAndSwap(false, true) {
		return false
	}
	(*f)()
	return true
}

// newSession is Begin without starting the session in the background: its first wait does.
func newSession(cfg Config) *Session {
	s := &Session{cfg: cfg, requestID: newRequestID()}
	// The audit log's directory exists before the request is floored (which resolves its bind
	// sources), as when the log was opened first: a bind of it is refused as the state root's
	// (MOUNT_STATE_ROOT) on a fresh state root too, not failed as a missing source when the
	// background start has not made it yet.
	if filepath.IsAbs(cfg.StateRoot) {
		os.MkdirAll(filepath.Join(cfg.StateRoot, "audit"), 0o700) // begin reports any error
	}
	return s
}

// start returns the session's start, making one unless one is published: the first made is
// published, and one made meanwhile by another (the goroutine Begin started, or the decision) is
// released. Neither waits for the other.
func (s *Session) start() *sessionStart {
	if st := s.started.Load(); st != nil {
		return st
	}
	st := s.begin()
	if s.started.CompareAndSwap(nil, st) {
		return st
	}
	st.release()
	return s.started.Load()
}

func (s *Session) begin() *sessionStart {
	cfg := s.cfg
	st := &sessionStart{}
	if !filepath.IsAbs(cfg.StateRoot) {
		st.err = fmt.Errorf("policy state root %q: must be an absolute path", cfg.StateRoot)
		return st
	}
	var err error
	if st.log, err = audit.Open(filepath.Join(cfg.StateRoot, "audit"), audit.Options{}); err != nil {
		st.err = fmt.Errorf("open audit log: %w", err)
		return st
	}
	st.ev = cfg.Evaluator
	if st.ev == nil {
		st.ev, st.everr = evalproto.Helper()
	}
	// Only a request the decision cache cannot answer starts the evaluator. The cache's key
	// names both binaries: the evaluator's embeds the default policy.
	if st.everr == nil {
		st.cache = document.OpenCache(cfg.source(), st.ev.BuildDigest())
	}
	if st.cache != nil {
		// Its directory is opened and the entry a repeated request would look up is read here,
		// before the request is known (Pin, Prefetch), not by the lookup.
		st.cache.Pin()
		st.cache.Prefetch()
	}
	return st
}

// wait returns the error of the session's start (start), making it if none is published.
func (s *Session) wait() error { return s.start().err }

// errClosed refuses what a session closed before its start is asked.
var errClosed = errors.New("policy: the session was closed before it started")

// close releases the audit log and the cache the session's start opened; a session not started
// yet never starts (a start still being made is released by its maker).
func (s *Session) close() {
	s.ended.Store(true)
	if s.started.CompareAndSwap(nil, &sessionStart{err: errClosed}) {
		return
	}
	s.started.Load().release()
}

// sessionLog is the session's audit log, once it is open: a request's trail is made before.
type sessionLog struct{ s *Session }

func (l sessionLog) Append(events ...audit.Event) ([]audit.Record, error) {
	st := l.s.start()
	if st.err != nil {
		return nil, st.err
	}
	return st.log.Append(events...)
}

// source is the policy source cfg selects.
func (cfg Config) source() document.SourceOptions {
	return document.SourceOptions{Dir: cfg.PolicyDir, Bundle: cfg.PolicyBundle,
		VerificationKeyFile: cfg.PolicyKeyFile, StateRoot: cfg.StateRoot}
}

// Decide decides req with the policy cfg selects (Begin(cfg).Decide).
func Decide(ctx context.Context, cfg Config, rt *sandbox.Runtime, req Request) (*Decision, error) {
	return Begin(cfg).Decide(ctx, rt, req)
}

// Decide decides req on the effective spec rt's floor makes of it, and records the decision in
// <StateRoot>/audit (durable before a refusal returns; for an allowed request, once Durable
// returns). A denial is a *document.DeniedError carrying every reason; a policy that cannot be
// loaded or prepared, or a session that could not start, refuses too (fail closed). Nothing is
// created here: rt is used only for its floor (a dry run).
func (s *Session) Decide(ctx context.Context, rt *sandbox.Runtime, req Request) (*Decision, error) {
	if req.Spec == nil || req.Spec.Process == nil {
		s.close()
		return nil, errors.New("policy: the request has no spec process")
	}
	// Nothing is decided (or audited as allowed) about a container that could never exist.
	if err := sandbox.ValidateID(req.ContainerID); err != nil {
		s.close()
		return nil, err
	}
	uid := s.cfg.UID
	t := gate.NewTrail(sessionLog{s}, audit.Actor{UID: &uid}, req.Tenant, s.requestID)
	t.SetContainer(req.ContainerID)
	if s.background {
		t.SetAsync(func(flush func()) {
			// The lookup's hint for the next request (Cache.SaveHint) is written with the
			// append, off the decision's path, and before Durable, which closes the cache once
			// the append is done, can return.
			f := func() {
				if st := s.started.Load(); st != nil && st.cache != nil {
					st.cache.SaveHint()
				}
				flush()
			}
			s.flush.Store(&f)
		})
	}
	out, err := s.decide(ctx, rt, req, t)
	if err != nil {
		// A refusal is durable before it is reported.
		ferr := t.Flush()
		s.close()
		if ferr != nil {
			return nil, errors.Join(err, fmt.Errorf("the policy decision was not audited: %w", ferr))
		}
		return out, err
	}
	// An allowed decision is appended while the sandbox is created (its init waits for start):
	// Durable waits for it before anything runs.
	t.FlushAsync()
	out.durable = func() error {
		start := time.Now()
		s.runFlush() // not made yet (an exec waits at once): made here
		err := t.WaitAsync()
		out.Audit = time.Since(start)
		s.close()
		if err != nil {
			return fmt.Errorf("the policy decision was not audited: %w", err)
		}
		return nil
	}
	return out, nil
}

// Durable waits until the decision's audit records are durable and releases the audit log. The
// caller must call it once, after Create and before Start or Exec (an error means the request
// must not go on: delete what was created).
func (d *Decision) Durable() error {
	d.once.Do(func() { d.durableErr = d.durable() })
	return d.durableErr
}

func (s *Session) decide(ctx context.Context, rt *sandbox.Runtime, req Request, t *gate.Trail) (*Decision, error) {
	cfg := s.cfg
	proc := req.Spec.Process
	if req.Operation == document.OpExec {
		if req.Process == nil {
			return nil, errors.New("policy: exec without a process")
		}
		proc = req.Process
	}
	t.Add(audit.TypeEngine, "request", map[string]string{
		"runtime": "bulwark-runc", "operation": string(req.Operation), "bundle": req.Bundle,
		"args": gate.JSONString(proc.Args),
	})
	out := &Decision{}
	// Hooks are the runtime's to run, not the sandbox's: each is opened and hashed here, and
	// policy decides on what was opened (an exec runs none).
	spec := req.Spec
	if spec.Hooks != nil {
		cp := *spec
		cp.Hooks = nil
		spec = &cp
	}
	if req.Operation != document.OpExec {
		hooks, err := inspectHooks(req.Spec.Hooks)
		if err != nil {
			return nil, t.Refuse("hooks", err)
		}
		out.Hooks = hooks
		defer func() {
			if out.Spec == nil {
				hooks.Close()
				out.Hooks = nil
			}
		}()
	}
	src := cfg.source()
	recorder := gate.Recorder(t.Add)
	var eval *evalproto.Session
	defer func() { eval.Close() }()
	decidePolicy := func(ctx context.Context, preq *document.Request, input string) (document.Decision, error) {
		waiting := time.Now()
		st := s.start()
		out.SessionWait += time.Since(waiting)
		if st.err != nil {
			return document.Decision{}, st.err
		}
		ev, everr, cache := st.ev, st.everr, st.cache
		if cache != nil {
			if d, ok := cache.LookupDigest(preq, input); ok {
				out.Cached = true
				recorder.RecordDecision(document.CachedRecordDigest(preq, input, d))
				return d, nil
			}
		}
		if everr != nil {
			return document.Decision{}, fmt.Errorf("policy: %w", everr)
		}
		if eval == nil {
			var (
				prepared evalproto.Prepared
				err      error
			)
			if eval, prepared, err = evalproto.Start(ctx, ev, evalproto.Hello{Build: sandbox.BuildID(), Source: src}); err != nil {
				return document.Decision{}, fmt.Errorf("policy: %w", err)
			}
			out.Load, out.Prepare = prepared.Load, prepared.Prepare
			if prepared.Accepted != nil {
				t.Add(audit.TypePolicy, "bundle-accepted", prepared.Accepted)
			}
		}
		d, deterministic, err := eval.Decide(preq, input)
		if err != nil {
			return document.Decision{}, fmt.Errorf("policy: %w", err)
		}
		recorder.RecordDecision(document.DecisionRecord{InputDigest: input, Tenant: preq.Tenant, Operation: preq.Operation,
			Allow: d.Allow, Reasons: d.Reasons, Revision: d.Revision, Duration: d.Duration})
		if cache != nil {
			// Failing to store costs the next request the full decision, nothing else.
			_ = cache.Store(preq, d, document.Storable{Deterministic: deterministic})
		}
		return d, nil
	}

	// A create mounts its bind sources: each is resolved once, and what policy sees is what is
	// mounted. An exec mounts nothing (the container's mounts exist): policy resolves the
	// sources as the bundle names them, and one removed since the create does not refuse it.
	spec = withLinux(spec)
	floorSpec := spec
	var dockerVols []dockerVolume
	if req.Operation == document.OpExec {
		// An exec enters the container's own namespaces (a pod container's too): none of
		// the bundle's namespace paths is joined anew.
		cp, linux := *spec, *spec.Linux
		linux.Namespaces = slices.Clone(linux.Namespaces)
		for i := range linux.Namespaces {
			linux.Namespaces[i].Path = ""
		}
		cp.Process, cp.Linux = proc, &linux
		floorSpec = &cp
	} else {
		var (
			binds *sandbox.BindSources
			err   error
		)
		if spec, binds, err = sandbox.ResolveBinds(spec, req.Bundle); err != nil {
			return nil, t.Refuse("mounts", err)
		}
		out.Binds = binds
		defer func() {
			if out.Spec == nil {
				binds.Close()
			}
		}()
		floorSpec = spec
	}
	// Docker volumes are shown to policy for an exec too (it decides on the same mounts).
	var err error
	if dockerVols, err = findDockerVolumes(cfg.DockerRoot, req.Bundle, spec, out.Binds); err != nil {
		return nil, t.Refuse("mounts", err)
	}
	memUnset, pidsUnset := unsetLimits(req.Spec)
	// A state root that does not resolve is resolved again by the document's build, which
	// refuses the request with its error.
	stateRoot, rerr := s.stateRoot()
	if rerr != nil {
		stateRoot = cfg.StateRoot
	}
	o, err := gate.Decide(ctx, gate.Request{
		Runtime: rt, Spec: floorSpec, Binds: out.Binds, ContainerID: req.ContainerID, Pod: req.Pod, Trail: t,
		Context: document.Context{
			Tenant:    req.Tenant,
			Identity:  document.Identity{UID: uint32(cfg.UID), GID: uint32(cfg.GID)},
			Operation: req.Operation, BundleDir: req.Bundle, BindsResolved: req.Operation != document.OpExec,
			StateRoot: stateRoot, StateRootResolved: rerr == nil, Hooks: out.Hooks.policyHooks(), DockerVolumes: policyVolumes(dockerVols),
		},
		MemoryUnset: memUnset, PidsUnset: pidsUnset,
		Decide: decidePolicy,
	})
	if o == nil {
		return nil, err
	}
	out.Decision, out.InputDigest, out.Constraints = o.Decision, o.InputDigest, o.Constraints
	if err != nil || req.Operation == document.OpExec {
		return out, err
	}
	if err := adoptDockerVolumes(dockerVols, t); err != nil {
		return out, t.Refuse("mounts", err)
	}
	if len(out.Constraints) > 0 {
		// Create floors the spec again; explicit limits are kept as they are.
		res := specs.LinuxResources{}
		if spec.Linux.Resources != nil {
			res = *spec.Linux.Resources
		}
		eff := o.Floor.Spec.Linux.Resources
		res.Memory, res.Pids = eff.Memory, eff.Pids
		linux := *spec.Linux
		linux.Resources = &res
		spec.Linux = &linux
	}
	out.Spec, out.Floor = spec, o.Floor
	return out, nil
}

// newRequestID names one bulwark-runc request in the audit log. It is read from the kernel's
// random source by the getrandom system call itself: crypto/rand's first read in a process cost
// ≈ 0.1 ms of every start, and so did x/sys/unix.Getrandom's, which sets up the vDSO's per-thread
// state (a mapping) on its first call.
func newRequestID() string {
	var b [6]byte
	if n, _, errno := unix.Syscall(unix.SYS_GETRANDOM, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), 0); errno != 0 || n != uintptr(len(b)) {
		rand.Read(b[:])
	}
	return hex.EncodeToString(b[:])
}

// withLinux returns spec, or a copy of it with an empty linux section if it has none.
func withLinux(spec *specs.Spec) *specs.Spec {
	if spec.Linux != nil {
		return spec
	}
	cp := *spec
	cp.Linux = &specs.Linux{}
	return &cp
}

// unsetLimits reports whether spec leaves the memory and the pids limit unset (so the floor's
// default applies).
func unsetLimits(spec *specs.Spec) (memory, pids bool) {
	var res *specs.LinuxResources
	if spec.Linux != nil {
		res = spec.Linux.Resources
	}
	memory = res == nil || res.Memory == nil || res.Memory.Limit == nil || *res.Memory.Limit <= 0
	pids = res == nil || res.Pids == nil || res.Pids.Limit == nil || *res.Pids.Limit <= 0
	return memory, pids
}

// Summary is the one line the runtime's debug log shows for an allowed decision.
func (d *Decision) Summary() string {
	return "policy: allow (revision " + d.Decision.Revision + ", input " + d.InputDigest +
		", decide " + d.Decision.Duration.String() + ", cached " + strconv.FormatBool(d.Cached) + ", load " + d.Load.String() +
		", prepare " + d.Prepare.String() + ", session wait " + d.SessionWait.String() + ", audit " + d.Audit.String() +
		", constraints " + strconv.Itoa(len(d.Constraints)) + ")"
}
