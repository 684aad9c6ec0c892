package policy

import (
	"context"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DecideSpec is the runtime's entry point: it builds the request document from the effective
// spec (after the floor) and its context, and decides it. A spec the document cannot be built
// from is denied too (REQUEST_INVALID), so the caller has one answer to act on; use
// decision.Err() to refuse with every reason.
func (e *Engine) DecideSpec(ctx context.Context, spec *specs.Spec, c Context) Decision {
	req, err := Build(spec, c)
	if err != nil {
		d := deny(CodeRequestInvalid, "", err)
		return e.finish(d, time.Now(), DecisionRecord{Tenant: c.Tenant, Operation: c.Operation})
	}
	return e.Decide(ctx, req)
}
