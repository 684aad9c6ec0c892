package document

import (
	"fmt"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/errdefs"
)

// Reason codes the engine itself produces; the policy's own codes (CAP_FORBIDDEN,
// MOUNT_HOST_PATH_FORBIDDEN, …) are listed in default/run.rego.
const (
	CodeRequestInvalid  = "REQUEST_INVALID"
	CodePolicyError     = "POLICY_ERROR"
	CodePolicyUndefined = "POLICY_UNDEFINED"
)

// Reason is one cause of a decision: a stable code, a message for humans and the request
// document path it is about (e.g. "capabilities[2]").
type Reason struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Path    string `json:"path"`
}

// Constraints are limits the runtime must apply on top of the request; nil means none.
type Constraints struct {
	MaxMemory *int64 `json:"maxMemory,omitempty"`
	MaxPids   *int64 `json:"maxPids,omitempty"`
	// Capabilities, when the policy says (non-nil), are the capabilities the tenant is granted:
	// the engine keeps only these of the defaults it asks for on the caller's behalf. Apply does
	// not use it. Encoded (the decision cache) an empty list stays one: none granted is not
	// "the policy does not say" (omitzero omits nil only).
	Capabilities []string `json:"capabilities,omitzero"`
	// Egress, when the policy says (non-nil), is the egress of a request that names none (its
	// egress mode "default"): one mode, or allowlist entries PROTO:CIDR[:PORT[-PORT]]. Apply
	// does not use it.
	Egress []string `json:"egress,omitzero"`
	// MaxNetworkRate is the most a container may send or receive through its network, in bits
	// per second: the engine gives it to each direction a request leaves unlimited (policy
	// denies a request above it). Apply does not use it.
	MaxNetworkRate *int64 `json:"maxNetworkRate,omitempty"`
	// Quotas, when the policy says (non-nil), are the tenant's quotas (quota.go): a run of it is
	// counted against them. Apply does not use it.
	Quotas *QuotaLimits `json:"quotas,omitempty"`
}

// Decision is the policy's answer. The zero value denies.
type Decision struct {
	Allow       bool          `json:"allow"`
	Reasons     []Reason      `json:"reasons"`
	Constraints Constraints   `json:"constraints"`
	Revision    string        `json:"revision"`
	Duration    time.Duration `json:"durationNs"`
}

// Apply returns a copy of res with the constraints applied: each limit becomes the stricter of
// the requested one and the constraint, and an unset or unlimited request gets the constraint.
// It never loosens a request.
func (c Constraints) Apply(res *specs.LinuxResources) *specs.LinuxResources {
	out := &specs.LinuxResources{}
	if res != nil {
		cp := *res
		out = &cp
	}
	if c.MaxMemory != nil {
		mem := specs.LinuxMemory{}
		if out.Memory != nil {
			mem = *out.Memory
		}
		mem.Limit = stricter(mem.Limit, *c.MaxMemory)
		out.Memory = &mem
	}
	if c.MaxPids != nil {
		pids := specs.LinuxPids{}
		if out.Pids != nil {
			pids = *out.Pids
		}
		pids.Limit = stricter(pids.Limit, *c.MaxPids)
		out.Pids = &pids
	}
	return out
}

// stricter picks the lower positive limit; a missing, zero or negative (unlimited) request
// counts as looser than any constraint.
func stricter(req *int64, max int64) *int64 {
	if max <= 0 {
		return req // a non-positive constraint is malformed; keep the request (policy denies it)
	}
	if req == nil || *req <= 0 || *req > max {
		return &max
	}
	v := *req
	return &v
}

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

// QuotaLimits are a tenant's quotas; nil: no limit.
type QuotaLimits struct {
	Containers *int64 `json:"containers"`
	Memory     *int64 `json:"memory"`
	Pids       *int64 `json:"pids"`
	NanoCPUs   *int64 `json:"nanoCPUs"`
	ImagesSize *int64 `json:"imagesSize"`
}

// Any says whether any limit is set.
func (l QuotaLimits) Any() bool {
	return l.Containers != nil || l.Memory != nil || l.Pids != nil || l.NanoCPUs != nil || l.ImagesSize != nil
}
