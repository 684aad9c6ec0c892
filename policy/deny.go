package policy

import (
	"context"
	"fmt"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/errdefs"
)

// DeniedError is a denied decision as an error: its message lists every reason, one per line,
// so a CLI printing it whole shows the operator everything at once.
type DeniedError struct {
	Decision Decision
}

func (e *DeniedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "denied by policy (revision %s):", e.Decision.Revision)
	for _, r := range e.Decision.Reasons {
		fmt.Fprintf(&b, "\n  %s: %s", r.Code, r.Message)
		if r.Path != "" {
			fmt.Fprintf(&b, " [%s]", r.Path)
		}
	}
	return b.String()
}

// Unwrap classes a denial as refused by policy.
func (e *DeniedError) Unwrap() error { return errdefs.ErrRefusedByPolicy }

// Err returns nil for an allowed decision and a *DeniedError otherwise.
func (d Decision) Err() error {
	if d.Allow {
		return nil
	}
	return &DeniedError{Decision: d}
}

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
