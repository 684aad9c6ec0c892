package policy

import (
	"context"
	"errors"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
)

// QuotaQuery is the quota decision of the same policy (default/quota.rego): the tenant's limits
// on what its containers and images hold together, and whether one more fits. The policy decides
// the limits; the engine counts what the tenant holds (from the state root's records, under the
// tenant's quota lock) and hands the count in.
const QuotaQuery = "data.bulwark.run.quota_decision"

// QuotaAPIVersion is the api_version of a quota request document.
const QuotaAPIVersion = "bulwark.dev/quota/v1"

// Reason codes of quota refusals (default/quota.rego).
const (
	CodeQuotaContainers = "QUOTA_CONTAINERS_EXCEEDED"
	CodeQuotaMemory     = "QUOTA_MEMORY_EXCEEDED"
	CodeQuotaPids       = "QUOTA_PIDS_EXCEEDED"
	CodeQuotaCPUs       = "QUOTA_CPUS_EXCEEDED"
	CodeQuotaImages     = "QUOTA_IMAGES_EXCEEDED"
)

// DecideQuota evaluates req against the quota decision, prepared on first use from the already
// compiled policy. Like Decide it never errors: an undefined or malformed result denies. A policy
// with no rule for the quota decision at all (an operator's own rules written before quotas) sets
// no quota: it allows, with no limits.
func (e *Engine) DecideQuota(ctx context.Context, req QuotaRequest) QuotaDecision {
	if len(e.compiler.GetRules(ast.MustParseRef(QuotaQuery))) == 0 {
		return QuotaDecision{Allow: true}
	}
	req.APIVersion = QuotaAPIVersion
	d, obj := e.evalSide(ctx, &e.quota, QuotaQuery, req)
	if obj == nil {
		return QuotaDecision{Reasons: d.Reasons}
	}
	out := QuotaDecision{Allow: d.Allow, Reasons: d.Reasons}
	var err error
	if out.Limits, err = parseQuotaLimits(field(obj, "limits")); err != nil {
		return QuotaDecision{Reasons: []Reason{{Code: CodePolicyError, Message: "quota decision: " + err.Error()}}}
	}
	return out
}

// parseQuotaLimits reads {"containers": n|null, ...}: each limit a non-negative integer, or
// null (or absent) for none.
func parseQuotaLimits(v ast.Value) (QuotaLimits, error) {
	var l QuotaLimits
	obj, ok := v.(ast.Object)
	if !ok {
		return l, errors.New("limits is not an object")
	}
	for k, dst := range map[string]**int64{"containers": &l.Containers, "memory": &l.Memory, "pids": &l.Pids,
		"nanoCPUs": &l.NanoCPUs, "imagesSize": &l.ImagesSize} {
		if _, null := field(obj, k).(ast.Null); null {
			continue
		}
		n, err := optInt(obj, k)
		if err != nil {
			return l, err
		}
		if n != nil && *n < 0 {
			return l, fmt.Errorf("limits.%s is negative", k)
		}
		*dst = n
	}
	return l, nil
}
