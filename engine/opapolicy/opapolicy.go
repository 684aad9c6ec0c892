// Package opapolicy evaluates an engine's policy in the calling process with OPA: for bulwarkd,
// which prepares its policy once and decides many requests in memory, and for the commands that
// link OPA anyway (`bulwark policy`, tests). The bulwark CLI's run path uses the engine's default
// instead, the bulwark-policy evaluator (engine.HelperPolicies), so that it links no OPA.
package opapolicy

import (
	"context"

	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/engine/internal/gate"
	"bulwark.dev/bulwark/policy"
	"bulwark.dev/bulwark/policy/document"
)

// Policies is engine.Policies evaluated in this process.
type Policies struct{}

var _ engine.Policies = Policies{}

// CacheBuild names this binary and the default policy it embeds.
func (Policies) CacheBuild() string { return policy.CacheBuild() }

// Prepare loads and prepares the policy src selects.
func (Policies) Prepare(ctx context.Context, src document.SourceOptions, _ []string) (engine.Evaluator, engine.Prepared, error) {
	p, err := policy.Load(src)
	if err != nil {
		return nil, engine.Prepared{}, err
	}
	// The engine records each decision in its request's trail.
	pe, accepted, err := prepare(ctx, src.StateRoot, p, policy.WithRecorder(nil))
	if err != nil {
		return nil, engine.Prepared{}, err
	}
	return evaluator{pe}, engine.Prepared{Info: p.Info, Accepted: accepted, Storable: policy.StorableOf(p)}, nil
}

type evaluator struct{ pe *policy.Engine }

func (e evaluator) Decide(ctx context.Context, req *document.Request) (document.Decision, error) {
	return e.pe.Decide(ctx, req), nil
}

func (e evaluator) DecideQuota(ctx context.Context, req document.QuotaRequest) (document.QuotaDecision, error) {
	return e.pe.DecideQuota(ctx, req), nil
}

func (e evaluator) DecideStorage(ctx context.Context, req document.StorageRequest) (document.StorageDecision, error) {
	return e.pe.DecideStorage(ctx, req), nil
}

func (evaluator) Close() error { return nil }

// PrepareAudited is policy.NewEngine for a policy loaded against the state root (as `bulwark
// policy eval` does): when p is a signed bundle whose preparation raised the root's accepted
// bundle revision (the rollback floor policy/ records), that acceptance is appended to
// <root>/audit as policy.bundle-accepted. The audit log is opened only then, so evaluating the
// embedded policy or a directory touches nothing.
func PrepareAudited(ctx context.Context, root string, id engine.Identity, p *policy.Policy, opts ...policy.Option) (*policy.Engine, error) {
	pe, attrs, err := prepare(ctx, root, p, opts...)
	if err != nil || attrs == nil {
		return pe, err
	}
	if err := engine.RecordBundleAccepted(root, id, attrs); err != nil {
		return nil, err
	}
	return pe, nil
}

// prepare is policy.NewEngine that also returns the attributes of a policy.bundle-accepted event
// when preparing p raised root's accepted bundle revision to p's (nil otherwise).
func prepare(ctx context.Context, root string, p *policy.Policy, opts ...policy.Option) (*policy.Engine, map[string]string, error) {
	watch, err := gate.WatchBundle(root, p.Info)
	if err != nil {
		return nil, nil, err
	}
	pe, err := policy.NewEngine(ctx, p, opts...)
	if err != nil {
		return nil, nil, err
	}
	accepted, err := watch.Accepted()
	if err != nil {
		return nil, nil, err
	}
	return pe, accepted, nil
}
