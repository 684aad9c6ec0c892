package engine

import (
	"context"
	"slices"
	"sync"

	"bulwark.dev/bulwark/engine/internal/evalproto"
	"bulwark.dev/bulwark/policy/document"
	"bulwark.dev/bulwark/sandbox"
)

// The engine links no OPA: a request its decision cache (policy/document) answers is decided
// without the policy, and any other by the Policies its Config names. By default that is the
// policy evaluator bulwark-policy beside the running binary (HelperPolicies), executed for the
// first decision of an engine the cache cannot answer and kept for the engine's other decisions
// (its quota and storage decisions too) until Close: the bulwark CLI, started for every run,
// then starts without OPA's packages, as bulwark-runc does. A process that links OPA anyway (the
// daemon, which prepares once and decides many times in memory) hands in engine/opapolicy.
// Either way any failure refuses the request (fail closed).

// Policies loads and prepares an engine's policy.
type Policies interface {
	// CacheBuild names the binaries that decide (document.OpenCache's build: they embed the
	// default policy); "" means decisions are not cached.
	CacheBuild() string
	// Prepare loads and prepares the policy src selects. auditOnly names the request document's
	// annotations that only identify a request: Prepared.Storable says whether the policy reads
	// them.
	Prepare(ctx context.Context, src document.SourceOptions, auditOnly []string) (Evaluator, Prepared, error)
}

// Evaluator decides with a prepared policy. An error is a refusal of the request.
type Evaluator interface {
	Decide(ctx context.Context, req *document.Request) (document.Decision, error)
	DecideQuota(ctx context.Context, req document.QuotaRequest) (document.QuotaDecision, error)
	DecideStorage(ctx context.Context, req document.StorageRequest) (document.StorageDecision, error)
	// Close releases the evaluator (the engine's Close, or a reload's replacement).
	Close() error
}

// Prepared describes a prepared policy.
type Prepared struct {
	Info document.Info
	// Accepted holds the attributes of a policy.bundle-accepted event when preparing raised
	// the state root's accepted bundle revision.
	Accepted map[string]string
	// Storable is what the decision cache may keep of its decisions.
	Storable document.Storable
}

// HelperPolicies is the policy evaluator bulwark-policy beside the running binary
// (evalproto.Helper: the same owner, no one else may write it, the same build).
func HelperPolicies() Policies {
	ev, err := evalproto.Helper()
	return &helperPolicies{ev: ev, err: err}
}

type helperPolicies struct {
	ev  *evalproto.Evaluator
	err error
}

func (h *helperPolicies) CacheBuild() string {
	if h.err != nil {
		return ""
	}
	return h.ev.BuildDigest()
}

func (h *helperPolicies) Prepare(ctx context.Context, src document.SourceOptions, auditOnly []string) (Evaluator, Prepared, error) {
	if h.err != nil {
		return nil, Prepared{}, h.err
	}
	// The conversation outlives the request that started it (the engine's later decisions):
	// it ends with Close, not with ctx.
	s, p, err := evalproto.Start(context.WithoutCancel(ctx), h.ev, evalproto.Hello{Build: sandbox.BuildID(), Source: src, AuditOnly: auditOnly})
	if err != nil {
		return nil, Prepared{}, err
	}
	unread := p.AuditOnlyUnread
	out := Prepared{Info: p.Info, Accepted: p.Accepted, Storable: document.Storable{
		Deterministic: p.Deterministic,
		Unread: func(keys []string) bool {
			return unread && !slices.ContainsFunc(keys, func(k string) bool { return !slices.Contains(auditOnly, k) })
		},
	}}
	return &helperEvaluator{s: s}, out, nil
}

// helperEvaluator is one conversation with bulwark-policy; the engine's decisions may come from
// several goroutines (the daemon's), one at a time on the conversation.
type helperEvaluator struct {
	mu sync.Mutex // guards s
	s  *evalproto.Session
}

func (h *helperEvaluator) Decide(_ context.Context, req *document.Request) (document.Decision, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	// Whether the decision may be cached is the policy's (Prepared.Storable), the same for
	// every answer.
	d, _, err := h.s.Decide(req, document.InputDigest(req))
	return d, err
}

func (h *helperEvaluator) DecideQuota(_ context.Context, req document.QuotaRequest) (document.QuotaDecision, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.s.DecideQuota(req)
}

func (h *helperEvaluator) DecideStorage(_ context.Context, req document.StorageRequest) (document.StorageDecision, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.s.DecideStorage(req)
}

func (h *helperEvaluator) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.s.Close()
}
