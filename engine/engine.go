// Package engine composes one run request end to end: identity and tenant, TUF resolution and
// digest verification of the image, the verified read-only rootfs, the effective spec (image
// config + request + the sandbox floor), the policy decision on that spec, sandbox create and
// start, wait and cleanup — with an audit event for every step. The CLI uses it directly; a
// daemon would use the same code. Lower packages (sandbox, policy, signing, image, audit) know
// nothing of it: the engine implements their small interfaces (policy.DecisionRecorder,
// sandbox.EventSink) on top of the audit log.
package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/engine/internal/gate"
	"bulwark.dev/bulwark/image"
	"bulwark.dev/bulwark/policy"
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
	// PolicyDir, if set, loads the policy (or only tenant data) from a directory; PolicyBundle
	// loads a signed OPA bundle verified with PolicyKey. Neither: the embedded default.
	PolicyDir    string
	PolicyBundle string
	PolicyKey    []byte
	// AllowNoMAC passes the operator's audited exception down to the sandbox.
	AllowNoMAC bool
	// Unpack sets the limits against image bombs (per-image expanded size, per-layer
	// compression ratio, ...); the zero value is the store's defaults.
	Unpack image.UnpackOptions
	// Audit overrides the audit log (tests and benchmarks); nil opens <root>/audit.
	Audit Auditor
	// Resolver is the command (argv; tenant and network are appended) that serves a network's
	// resolver by calling ServeResolver; empty, containers of a network resolve no names.
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
	cache *policy.DecisionCache

	polMu    sync.Mutex     // guards pol, polEng and polErr
	pol      *policy.Policy // loaded at Open without a cache, else when first prepared
	polEng   *policy.Engine // prepared on first use; replaced by ReloadPolicy
	polErr   error
	polReady atomic.Bool // the policy was prepared (or failed to): decisions come from memory
	// routes hands each decision to the trail of the request it was made for, keyed by the
	// request document's digest (the recorder interface carries no context).
	routes decisionRoutes
	// limits are the tenants' quotas as the prepared policy gives them (quota.go).
	limits limitsCache
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
	if err := os.MkdirAll(filepath.Join(root, "engine"), 0o700); err != nil {
		return nil, fmt.Errorf("create engine state: %w", err)
	}
	store, err := image.Open(root)
	if err != nil {
		return nil, err
	}
	vols, err := volume.Open(root)
	if err != nil {
		return nil, err
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
	src := policy.SourceOptions{Dir: cfg.PolicyDir, Bundle: cfg.PolicyBundle, StateRoot: root}
	if e.cache = policy.OpenDecisionCache(src, AnnotationRequest); e.cache == nil {
		// Without a cache every request prepares the policy: it must load, or nothing runs.
		if e.pol, err = e.loadPolicy(); err != nil {
			e.closer()
			return nil, err
		}
	}
	return e, nil
}

// Close releases the audit log.
func (e *Engine) Close() error { return e.closer() }

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

func (e *Engine) loadPolicy() (*policy.Policy, error) {
	switch {
	case e.cfg.PolicyBundle != "":
		return policy.LoadBundle(e.cfg.PolicyBundle, policy.BundleOptions{VerificationKey: e.cfg.PolicyKey, StateRoot: e.cfg.Root})
	case e.cfg.PolicyDir != "":
		return policy.LoadDir(e.cfg.PolicyDir)
	}
	return policy.LoadEmbedded()
}

// decide decides req, recording the decision in t. Until this engine has prepared its policy (a
// one-shot CLI process never needs to), a request decided before under the same policy is
// answered from the decision cache, keyed without the request id annotation when the policy
// provably never reads it (policy/decisionkey.go); otherwise the policy is prepared once
// (prepare once, evaluate many) and decides, and a decision made right after preparing is
// stored for the next process. A prepared engine (the daemon) decides in memory.
func (e *Engine) decide(ctx context.Context, req *policy.Request, t *trail) (policy.Decision, error) {
	store := e.cache != nil && !e.polReady.Load()
	if store {
		if d, ok := e.cache.Lookup(req); ok {
			gate.Recorder(t.Add).RecordDecision(policy.CachedRecord(req, d))
			return d, nil
		}
	}
	pe, pol, err := e.preparedPolicyOf(ctx, t)
	if err != nil {
		return policy.Decision{}, err
	}
	key := policy.InputDigest(req)
	e.routes.add(key, t)
	defer e.routes.remove(key, t)
	d := pe.Decide(ctx, req)
	if store {
		// Failing to store costs the next process a full decision, nothing else.
		_ = e.cache.Store(pol, req, d)
	}
	return d, nil
}

// preparedPolicy prepares the policy on first use; t (if not nil) records the acceptance of a
// new bundle revision.
func (e *Engine) preparedPolicy(ctx context.Context, t *trail) (*policy.Engine, error) {
	pe, _, err := e.preparedPolicyOf(ctx, t)
	return pe, err
}

// preparedPolicyOf is preparedPolicy with the policy it was prepared from.
func (e *Engine) preparedPolicyOf(ctx context.Context, t *trail) (*policy.Engine, *policy.Policy, error) {
	e.polMu.Lock()
	defer e.polMu.Unlock()
	if e.polEng == nil && e.polErr == nil {
		defer e.polReady.Store(true)
		if e.pol == nil {
			if e.pol, e.polErr = e.loadPolicy(); e.polErr != nil {
				return nil, nil, fmt.Errorf("policy: %w", e.polErr)
			}
		}
		var accepted map[string]string
		e.polEng, accepted, e.polErr = preparePolicy(ctx, e.cfg.Root, e.pol, policy.WithRecorder(&e.routes))
		if accepted != nil && t != nil {
			// The request that activated a new bundle revision carries its acceptance.
			t.Add(audit.TypePolicy, "bundle-accepted", accepted)
		}
	}
	if e.polErr != nil {
		return nil, nil, fmt.Errorf("policy: %w", e.polErr)
	}
	return e.polEng, e.pol, nil
}

// ReloadPolicy loads the policy again from its source and prepares it (a daemon's SIGHUP).
// Decisions go on with the old policy until the new one is prepared; a source that fails to load
// or prepare leaves the old one in place and is the error. accepted holds the attributes of a
// policy.bundle-accepted event when the reload raised the root's accepted bundle revision.
func (e *Engine) ReloadPolicy(ctx context.Context) (info policy.Info, accepted map[string]string, err error) {
	p, err := e.loadPolicy()
	if err != nil {
		return info, nil, fmt.Errorf("load policy: %w", err)
	}
	pe, accepted, err := preparePolicy(ctx, e.cfg.Root, p, policy.WithRecorder(&e.routes))
	if err != nil {
		return info, nil, fmt.Errorf("prepare policy: %w", err)
	}
	e.polMu.Lock()
	e.pol, e.polEng, e.polErr = p, pe, nil
	e.polMu.Unlock()
	e.polReady.Store(true)
	return p.Info, accepted, nil
}

type decisionRoutes struct {
	mu sync.Mutex          // guards m
	m  map[string][]*trail // input digest → trails waiting for that decision
}

func (r *decisionRoutes) add(key string, t *trail) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string][]*trail{}
	}
	r.m[key] = append(r.m[key], t)
}

func (r *decisionRoutes) remove(key string, t *trail) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ts := r.m[key]
	for i, x := range ts {
		if x == t {
			ts = append(ts[:i], ts[i+1:]...)
			break
		}
	}
	if len(ts) == 0 {
		delete(r.m, key)
	} else {
		r.m[key] = ts
	}
}

// RecordDecision implements policy.DecisionRecorder. Request documents carry the request id
// (an annotation), so two requests never share a digest.
func (r *decisionRoutes) RecordDecision(d policy.DecisionRecord) {
	r.mu.Lock()
	var t *trail
	if ts := r.m[d.InputDigest]; len(ts) > 0 {
		t = ts[0]
	}
	r.mu.Unlock()
	if t != nil {
		gate.Recorder(t.Add).RecordDecision(d)
	}
}
