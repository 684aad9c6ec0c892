package gate

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/policy/document"
	"bulwark.dev/bulwark/sandbox"
)

// The one decision sequence every entry point (bulwark run, bulwark exec, bulwark-runc create,
// run and exec) goes through:
//
//	floor (sandbox.Floor: effective spec, raises, refusals, seccomp stack, MAC layers)
//	→ request document (the effective spec, with what the floor refused shown as asked)
//	→ decision (→ once more with the tenant's maxima, if only unset limits were above them)
//	→ floor refusal (stands whatever policy says) → constraints → audit trail

// Decider decides one request document, whose InputDigest is digest, recording the decision in
// the request's trail.
type Decider func(ctx context.Context, req *document.Request, digest string) (document.Decision, error)

// Request is one request to decide.
type Request struct {
	Runtime *sandbox.Runtime
	// Spec is the requested spec, bind sources resolved (sandbox.ResolveBinds); for exec, the
	// container's spec with the new process.
	Spec *specs.Spec
	// Binds are the spec's resolved sources (nil: none resolved, every namespace path is
	// refused): the floor identifies the namespaces it names from them (the pod model).
	Binds *sandbox.BindSources
	// ContainerID is the id of the container to create (a pod's sandbox is named by it).
	ContainerID string
	// Pod, for exec, is the pod the container's record says the floor proved at create.
	Pod string
	// Context says who asks what; Decide adds the floor's raises, seccomp and MAC layer.
	// SeccompProfile "unconfined" (an explicit request) is shown to policy as such.
	Context document.Context
	// MemoryUnset and PidsUnset say the caller set no such limit: where the floor's default is
	// above the tenant's maximum, the maximum is the stricter limit and is applied instead.
	MemoryUnset, PidsUnset bool
	// Withdraw, if set, is asked after a denial to take back from the effective spec what the
	// caller asked for on the requester's behalf and policy's constraints do not grant (engine:
	// Docker's default capabilities beyond the tenant's); what it returns is recorded as
	// constraints and the request decided again.
	Withdraw func(eff *specs.Spec, c document.Constraints) []sandbox.Raise
	Decide   Decider
	Trail    *Trail
}

// Outcome is a decided request.
type Outcome struct {
	// Floor is the floor's result; Floor.Spec has the policy's constraints applied.
	Floor       *sandbox.FloorResult
	Decision    document.Decision
	InputDigest string
	// Constraints are the limits policy made stricter than the effective spec's.
	Constraints []sandbox.Raise
}

// Raises are the floor's raises and the policy's constraints.
func (o *Outcome) Raises() []sandbox.Raise {
	return append(slices.Clone(o.Floor.Raises), o.Constraints...)
}

// Decide runs the decision sequence. A denial returns the outcome with a *document.DeniedError
// (joined with the floor's refusal, if any); a request the floor refuses is refused whatever
// policy says. Every step is recorded in the trail; nothing is created.
func Decide(ctx context.Context, in Request) (*Outcome, error) {
	t := in.Trail
	res, err := in.Runtime.FloorResolved(in.Spec, in.Binds)
	if err != nil {
		t.Add(audit.TypeContainer, "floor.refused", map[string]string{"error": err.Error()})
		return nil, err
	}
	out := &Outcome{Floor: res}
	t.Add(audit.TypeContainer, "floor.network", NetworkAttrs(res.Network))
	pctx := in.Context
	pctx.Raises = PolicyRaises(res.Raises)
	for _, j := range res.Joins {
		pctx.Joins = append(pctx.Joins, document.Join{Type: j.Type, Path: j.Path, Kind: j.Kind, Pod: j.Pod})
	}
	pctx.Pod = podOf(res, in.ContainerID, in.Pod)
	pctx.MACLayer = "none"
	if len(res.MAC) > 0 {
		pctx.MACLayer = res.MAC[0]
	}
	digest, d, err := decideOnce(ctx, in, res, pctx)
	if err != nil {
		return nil, t.Refuse("policy", err)
	}
	// Two retries, each only after a denial and each recorded as constraints: what was asked on
	// the requester's behalf and is not granted is withdrawn; and where the only reasons are
	// unset limits whose floor default is above the tenant's maximum, the maximum is applied.
	retry := func(changes []sandbox.Raise) error {
		out.Constraints = append(out.Constraints, changes...)
		pctx.Raises = PolicyRaises(out.Raises())
		digest, d, err = decideOnce(ctx, in, res, pctx)
		return err
	}
	if !d.Allow && in.Withdraw != nil {
		if changes := in.Withdraw(res.Spec, d.Constraints); len(changes) > 0 {
			if err := retry(changes); err != nil {
				return nil, t.Refuse("policy", err)
			}
		}
	}
	if in.Context.Operation != document.OpExec && !d.Allow && OnlyUnsetLimitsAboveMax(d, in.MemoryUnset, in.PidsUnset) {
		if err := retry(ApplyConstraints(res.Spec, d.Constraints)); err != nil {
			return nil, t.Refuse("policy", err)
		}
	}
	out.Decision, out.InputDigest = d, digest
	refusal := res.Err()
	if refusal == nil && in.Context.Privileged {
		refusal = fmt.Errorf("%w: privileged sandboxes do not exist (there is no way below the floor)", sandbox.ErrFloor)
	}
	if !d.Allow {
		// Both may refuse: the floor's own words follow policy's reasons.
		return out, errors.Join(&document.DeniedError{Decision: d}, refusal)
	}
	if refusal != nil {
		// A policy that allows what the floor never grants changes nothing.
		t.Add(audit.TypeContainer, "floor.refused", map[string]string{"error": refusal.Error()})
		return nil, refusal
	}
	if in.Context.Operation == document.OpExec {
		return out, nil
	}
	out.Constraints = append(out.Constraints, ApplyConstraints(res.Spec, d.Constraints)...)
	if len(out.Constraints) > 0 {
		t.Add(audit.TypePolicy, "constraints", RaisesAttrs(out.Constraints))
	}
	return out, nil
}

// decideOnce builds the request document of the floor's result and decides it; digest is the
// document's InputDigest, computed once (≈ 15 µs) for the decision, its cache and its record.
func decideOnce(ctx context.Context, in Request, res *sandbox.FloorResult, pctx document.Context) (digest string, d document.Decision, err error) {
	preq, err := document.Build(asked(res), pctx)
	if err != nil {
		return "", document.Decision{}, fmt.Errorf("policy input: %w", err)
	}
	if res.Spec.Linux.Seccomp == nil && pctx.SeccompProfile != "unconfined" {
		// The floor's default allowlist is always loaded: a spec without a profile is not
		// unconfined (only an explicit request for unconfined is shown as such).
		def := res.Seccomp[0]
		preq.Seccomp = document.Seccomp{Profile: "default", Digest: def.Digest, DefaultAction: def.DefaultAction}
	}
	digest = document.InputDigest(preq)
	d, err = in.Decide(ctx, preq, digest)
	return digest, d, err
}

// asked is the effective spec with what the floor refused put back as the request asked it, so
// that policy gives its reason for each (the floor's refusal stands whatever policy says).
func asked(res *sandbox.FloorResult) *specs.Spec {
	if len(res.Refusals) == 0 {
		return res.Spec
	}
	s := *res.Spec
	linux := *s.Linux
	proc := *s.Process
	caps := specs.LinuxCapabilities{}
	if proc.Capabilities != nil {
		caps = *proc.Capabilities
	}
	caps.Bounding = slices.Clone(caps.Bounding)
	linux.Namespaces = slices.Clone(linux.Namespaces)
	linux.Sysctl = maps.Clone(linux.Sysctl)
	for _, r := range res.Refusals {
		switch r.Field {
		case sandbox.RefusedCapability:
			caps.Bounding = append(caps.Bounding, r.Name)
		case sandbox.RefusedNamespace:
			ns := specs.LinuxNamespace{Type: specs.LinuxNamespaceType(r.Name), Path: r.Value}
			i := slices.IndexFunc(linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == ns.Type })
			switch {
			case r.Value == "" && i >= 0:
				// Absent from the request: the host's, as policy reads a missing namespace.
				linux.Namespaces = slices.Delete(linux.Namespaces, i, i+1)
			case i >= 0:
				linux.Namespaces[i] = ns
			default:
				linux.Namespaces = append(linux.Namespaces, ns)
			}
		case sandbox.RefusedSysctl:
			if linux.Sysctl == nil {
				linux.Sysctl = map[string]string{}
			}
			linux.Sysctl[r.Name] = r.Value
		}
	}
	proc.Capabilities = &caps
	s.Linux, s.Process = &linux, &proc
	return &s
}

// podOf is the pod a request's container belongs to: the floor's proof (FloorResult.Pod), or
// for an exec the container's record of it (recorded). The pod's uid is the CRI caller's
// annotation, kept only when it is a plain uid (policy's path patterns substitute it).
func podOf(res *sandbox.FloorResult, id, recorded string) *document.Pod {
	pod := res.Pod(id)
	if pod == "" {
		pod = recorded
	}
	if pod == "" {
		return nil
	}
	p := &document.Pod{Sandbox: pod}
	if uid := res.Spec.Annotations[sandbox.AnnotationSandboxUID]; plainPodUID(uid) {
		p.UID = uid
	}
	return p
}

// plainPodUID reports whether uid is 1 to 64 letters, digits and dashes. (A regular expression
// with that counted repetition cost 0.37 ms to compile at every start of the runtime binary.)
func plainPodUID(uid string) bool {
	if len(uid) == 0 || len(uid) > 64 {
		return false
	}
	for _, c := range []byte(uid) {
		if !(c == '-' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
