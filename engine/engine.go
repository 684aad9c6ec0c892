// Package engine composes one run request end to end: identity and tenant, TUF resolution and
// digest verification of the image, the verified read-only rootfs, the effective spec (image
// config + request + the sandbox floor), the policy decision on that spec, sandbox create and
// start, wait and cleanup — with an audit event for every step. The CLI uses it directly; a
// daemon would use the same code. Lower packages (sandbox, policy, signing, image, audit) know
// nothing of it: the engine implements their small interfaces (sandbox.EventSink) on top of the
// audit log. It links no OPA: its policy is evaluated by the Policies its Config names
// (policy.go).
package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/engine/internal/gate"
	"bulwark.dev/bulwark/image"
	"bulwark.dev/bulwark/internal/runroot"
	"bulwark.dev/bulwark/network"
	"bulwark.dev/bulwark/policy/document"
	"bulwark.dev/bulwark/sandbox"
	"bulwark.dev/bulwark/volume"
)

// Config configures an Engine. Everything it keeps (container records, images and layers, trust
// metadata, the policy revision, id ranges, the audit log) lives below Root, one state root, so a
// test can use a temp dir and an operator can back it up or scan it.
type Config struct {
	// Root is the state root; trust comes from <root>/trust (pinned root and repository, set
	// by 'bulwark trust init' or 'trust pin').
	Root string
	// RunRoot holds the per-run runtime state (the sandbox's state of each container, the
	// generated /etc files its containers share), which a reboot makes meaningless: on tmpfs,
	// runroot.Of(Root) under /run/bulwark unless set. Id ranges and MAC labels stay under Root.
	RunRoot string
	// PolicyDir, if set, loads the policy (or only tenant data) from a directory; PolicyBundle
	// loads a signed OPA bundle verified with the key in PolicyKeyFile. Neither: the embedded
	// default.
	PolicyDir    string
	PolicyBundle string
	// PolicyKeyFile is the PEM file of the public key a bundle is verified with.
	PolicyKeyFile string
	// Policies loads, prepares and evaluates the policy; nil: HelperPolicies (bulwark-policy
	// beside the running binary).
	Policies Policies
	// Trust resolves what the record of the last full TUF refresh cannot answer; nil:
	// HelperTrust (bulwark-admin beside the running binary).
	Trust TrustResolver
	// Zstd decodes the image store's zstd layers; nil: HelperZstd (bulwark-admin beside the
	// running binary).
	Zstd image.ZstdDecoder
	// CNI runs the CNI plugins of networks; nil: HelperCNI (bulwark-admin beside the running
	// binary).
	CNI network.Plugins
	// AllowNoMAC passes the operator's audited exception down to the sandbox.
	AllowNoMAC bool
	// Unpack sets the limits against image bombs (per-image expanded size, per-layer
	// compression ratio, ...); the zero value is the store's defaults.
	Unpack image.UnpackOptions
	// Audit overrides the audit log (tests and benchmarks); nil opens <root>/audit.
	Audit Auditor
	// Resolver is the command (argv; tenant and network are appended) that serves a network's
	// resolver by calling network/resolver.Serve; empty, containers of a network resolve no names.
	Resolver []string
	// Monitor is the command that runs ServeMonitor (the binary's hidden entry point). With it,
	// the engine starts the state root's supervisor when a container needs one and none runs
	// (it adopts the containers again), foreground runs are watched by it (their container dies
	// with them), and stopped containers can be started again.
	Monitor []string
	// Steps, if set, receives how long each step of a run took (steps.go).
	Steps sandbox.StepSink
}

// Engine runs requests against one state root. It is safe for concurrent use.
type Engine struct {
	cfg   Config
	store *image.Store
	// volumes answers each tenant for its own volumes only.
	volumes *volume.Store
	audit   Auditor
	closer  func() error
	// cache answers a request decided before without loading the policy (nil: a bundle, whose
	// rollback check runs on every load); see decide.
	cache *document.Cache

	polMu    sync.Mutex // guards eval, prepared and polErr
	eval     Evaluator  // prepared on first use; replaced by ReloadPolicy
	prepared Prepared
	polErr   error
	polReady atomic.Bool // the policy was prepared (or failed to): decisions come from memory
	// limits are the tenants' quotas as the prepared policy gives them (quota.go).
	limits limitsCache
	// runRootTended: a run of this engine was watched by the state root's supervisor, which
	// serves this run root and tidies it when it leaves (tidyRunRoot), after this process.
	runRootTended atomic.Bool
}

// Open prepares the state root, the image store, the audit log and the policy.
func Open(cfg Config) (*Engine, error) {
	if cfg.Root == "" {
		return nil, errors.New("engine: state root is required")
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("state root: %w", err)
	}
	cfg.Root = root
	if cfg.RunRoot == "" {
		cfg.RunRoot = runroot.Of(root)
	}
	if err := os.MkdirAll(filepath.Join(root, "engine"), 0o700); err != nil {
		return nil, fmt.Errorf("create engine state: %w", err)
	}
	if cfg.Zstd == nil {
		cfg.Zstd = HelperZstd
	}
	if cfg.CNI == nil {
		cfg.CNI = HelperCNI{}
	}
	store, err := image.OpenWith(root, image.Options{Zstd: cfg.Zstd})
	if err != nil {
		return nil, err
	}
	vols, err := volume.Open(root)
	if err != nil {
		return nil, err
	}
	if cfg.Policies == nil {
		cfg.Policies = HelperPolicies()
	}
	if cfg.Trust == nil {
		cfg.Trust = HelperTrust{}
	}
	e := &Engine{cfg: cfg, store: store, volumes: vols, audit: cfg.Audit, closer: func() error { return nil }}
	vols.CountAlso(e.writableRootsSize) // writable roots count toward max_volumes_size
	if e.audit == nil {
		l, err := audit.Open(filepath.Join(root, "audit"), audit.Options{})
		if err != nil {
			return nil, fmt.Errorf("open audit log: %w", err)
		}
		e.audit, e.closer = l, l.Close
	}
	// Without a cache (a bundle, whose rollback check runs on every load) every request
	// prepares the policy.
	e.cache = document.OpenCache(e.policySourceOptions(), cfg.Policies.CacheBuild(), AnnotationRequest)
	return e, nil
}

// Close releases the policy evaluator and the audit log, and the run root once no container of
// the state root is left — unless the state root's supervisor watched a run of this engine: it
// outlives this process and tidies the run root when it leaves, idle. Every `run --rm` left its
// run root without a container and tidied it (its 14 directories on a cgroup v1 host), and the
// next run made them again: 0.5-0.7 ms of each run's exit (issue 14). A state root used without
// a supervisor (no Config.Monitor) is tidied here, as before.
func (e *Engine) Close() error {
	e.polMu.Lock()
	var err error
	if e.eval != nil {
		err = e.eval.Close()
		e.eval = nil
	}
	e.polMu.Unlock()
	if !e.runRootTended.Load() {
		e.tidyRunRoot()
	}
	return errors.Join(err, e.closer())
}

// tidyRunRoot removes the run root's empty directories — and trees of them, such as the
// sandbox's shared directories (the masked directories' cover, the cgroup skeleton) — and the
// run root, when no container of the state root has a record (every test's state root would
// otherwise leave a directory under /run/bulwark). It holds the claims lock exclusively: a run
// makes its record (claim) before it opens the runtime that makes the directories again
// (start), so none is removed under a container; a claim in progress makes it skip.
func (e *Engine) tidyRunRoot() {
	records := func() bool {
		names, err := e.recordNames()
		return err != nil || len(names) > 0
	}
	// Nothing is made (not even the claims lock) in a state root that is gone or holds
	// containers.
	if _, err := os.Stat(e.cfg.RunRoot); err != nil || records() {
		return
	}
	unlock, ok, err := lockFile(e.claimLockPath(), unix.LOCK_EX|unix.LOCK_NB)
	if err != nil || !ok {
		return
	}
	defer unlock()
	if records() {
		return
	}
	removeEmptyDirs(e.cfg.RunRoot, 3)
}

// removeEmptyDirs removes dir if, once each of its subdirectories (depth levels down, symbolic
// links not followed) has been removed the same way, it is empty: only empty directories go,
// never a file. An empty directory is removed by one rmdir, without being listed: most of a run
// root's directories are empty ones when its last container goes, and tidying them is on the
// path of every `bulwark run --rm` that leaves it empty.
func removeEmptyDirs(dir string, depth int) {
	if err := unix.Rmdir(dir); err == nil || depth == 0 || !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.EEXIST) {
		return
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, ent := range ents {
		if ent.IsDir() {
			removeEmptyDirs(filepath.Join(dir, ent.Name()), depth-1)
		}
	}
	unix.Rmdir(dir) // only an empty one goes
}

// Root is the state root.
func (e *Engine) Root() string { return e.cfg.Root }

// Store is the image store.
func (e *Engine) Store() *image.Store { return e.store }

// PolicySource names where an engine's policy comes from: a signed bundle, a directory, or (zero)
// the embedded default.
type PolicySource struct {
	Dir    string `json:"dir,omitempty"`
	Bundle string `json:"bundle,omitempty"`
}

// Flags are the command-line flags that select s.
func (s PolicySource) Flags() string {
	switch {
	case s.Bundle != "":
		return "--policy-bundle " + s.Bundle
	case s.Dir != "":
		return "--policy-dir " + s.Dir
	}
	return "no policy flag (the embedded policy)"
}

// policySource is this engine's policy source, with absolute paths.
func (e *Engine) policySource() PolicySource {
	abs := func(p string) string {
		if p == "" {
			return ""
		}
		if a, err := filepath.Abs(p); err == nil {
			return a
		}
		return filepath.Clean(p)
	}
	return PolicySource{Dir: abs(e.cfg.PolicyDir), Bundle: abs(e.cfg.PolicyBundle)}
}

// policySourceOptions selects this engine's policy for document.OpenCache and Policies.Prepare.
func (e *Engine) policySourceOptions() document.SourceOptions {
	return document.SourceOptions{Dir: e.cfg.PolicyDir, Bundle: e.cfg.PolicyBundle, VerificationKeyFile: e.cfg.PolicyKeyFile, StateRoot: e.cfg.Root}
}

// decide decides req, recording the decision in t. Until this engine has prepared its policy (a
// one-shot CLI process never needs to), a request decided before under the same policy is
// answered from the decision cache, keyed without the request id annotation when the policy
// provably never reads it (policy/document key.go); otherwise the policy is prepared once
// (prepare once, evaluate many) and decides, and a decision made right after preparing is
// stored for the next process. A prepared engine (the daemon) decides in memory.
func (e *Engine) decide(ctx context.Context, req *document.Request, digest string, t *trail) (document.Decision, error) {
	rec := gate.Recorder(t.Add)
	store := e.cache != nil && !e.polReady.Load()
	if store {
		if d, ok := e.cache.LookupDigest(req, digest); ok {
			rec.RecordDecision(document.CachedRecordDigest(req, digest, d))
			return d, nil
		}
	}
	ev, prepared, err := e.preparedPolicyOf(ctx, t)
	if err != nil {
		return document.Decision{}, err
	}
	d, err := ev.Decide(ctx, req)
	if err != nil {
		return document.Decision{}, fmt.Errorf("policy: %w", err)
	}
	rec.RecordDecision(document.DecisionRecord{InputDigest: digest, Tenant: req.Tenant, Operation: req.Operation,
		Allow: d.Allow, Reasons: d.Reasons, Revision: d.Revision, Duration: d.Duration})
	if store {
		// Failing to store costs the next process a full decision, nothing else.
		_ = e.cache.Store(req, d, prepared.Storable)
	}
	return d, nil
}

// preparedPolicy prepares the policy on first use; t (if not nil) records the acceptance of a
// new bundle revision.
func (e *Engine) preparedPolicy(ctx context.Context, t *trail) (Evaluator, error) {
	ev, _, err := e.preparedPolicyOf(ctx, t)
	return ev, err
}

// preparedPolicyOf is preparedPolicy with what the preparation said of the policy.
func (e *Engine) preparedPolicyOf(ctx context.Context, t *trail) (Evaluator, Prepared, error) {
	e.polMu.Lock()
	defer e.polMu.Unlock()
	if e.eval == nil && e.polErr == nil {
		defer e.polReady.Store(true)
		e.eval, e.prepared, e.polErr = e.cfg.Policies.Prepare(ctx, e.policySourceOptions(), []string{AnnotationRequest})
		if e.prepared.Accepted != nil && t != nil {
			// The request that activated a new bundle revision carries its acceptance.
			t.Add(audit.TypePolicy, "bundle-accepted", e.prepared.Accepted)
		}
	}
	if e.polErr != nil {
		return nil, Prepared{}, fmt.Errorf("policy: %w", e.polErr)
	}
	return e.eval, e.prepared, nil
}

// ReloadPolicy loads the policy again from its source and prepares it (a daemon's SIGHUP).
// Decisions go on with the old policy until the new one is prepared; a source that fails to load
// or prepare leaves the old one in place and is the error. accepted holds the attributes of a
// policy.bundle-accepted event when the reload raised the root's accepted bundle revision.
func (e *Engine) ReloadPolicy(ctx context.Context) (info document.Info, accepted map[string]string, err error) {
	ev, p, err := e.cfg.Policies.Prepare(ctx, e.policySourceOptions(), []string{AnnotationRequest})
	if err != nil {
		return info, nil, fmt.Errorf("prepare policy: %w", err)
	}
	e.polMu.Lock()
	old := e.eval
	e.eval, e.prepared, e.polErr = ev, p, nil
	e.polMu.Unlock()
	e.polReady.Store(true)
	if old != nil {
		old.Close()
	}
	return p.Info, p.Accepted, nil
}
