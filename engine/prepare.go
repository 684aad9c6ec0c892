package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/policy"
	"bulwark.dev/bulwark/profiles"
	"bulwark.dev/bulwark/sandbox"
)

// Prepare runs every step up to the decision: identity and tenant, trust, image verification,
// rootfs, the effective spec and the policy decision. Nothing is created. The steps' audit
// events are durable when it returns a refusal, or for a dry run; an allowed plan's go out with
// Start (or EncodePlan).
func (e *Engine) Prepare(ctx context.Context, req *Request) (*Plan, error) {
	if req.ID == "" {
		req.ID = NewID()
	}
	if req.Tenant == "" {
		req.Tenant = "default"
	}
	id := req.Name
	if id == "" {
		id = NewID()
	}
	t := newTrail(e.audit, req.Identity, req.Tenant, req.ID)
	t.setContainer(id)
	plan, err := e.prepare(ctx, req, id, t)
	// An allowed plan's records go out with the create record (Start); a refusal or a dry run
	// ends here, so its records must be durable now.
	if err != nil || req.DryRun {
		if ferr := t.flush(); ferr != nil {
			return nil, errors.Join(err, ferr)
		}
	}
	return plan, err
}

func (e *Engine) prepare(ctx context.Context, req *Request, id string, t *trail) (*Plan, error) {
	t.add(audit.TypeEngine, "request", map[string]string{
		"image": req.Image, "args": jsonString(req.Args), "detach": strconv.FormatBool(req.Detach),
		"remove": strconv.FormatBool(req.Remove), "dry_run": strconv.FormatBool(req.DryRun),
	})
	refuse := func(step string, err error) (*Plan, error) {
		t.add(audit.TypeEngine, "refused", map[string]string{"step": step, "error": err.Error()})
		return nil, err
	}
	if !nameRE.MatchString(id) {
		// The name becomes a directory name under the state root: no separators, no "..".
		return refuse("request", fmt.Errorf("container name %q: want [A-Za-z0-9][A-Za-z0-9_.-]{0,127}", id))
	}
	if !tenantRE.MatchString(req.Tenant) {
		return refuse("identity", fmt.Errorf("tenant %q: want [a-z0-9][a-z0-9-]{0,62}", req.Tenant))
	}
	t.add(audit.TypeEngine, "identity", map[string]string{
		"uid": strconv.Itoa(req.Identity.UID), "gid": strconv.Itoa(req.Identity.GID), "tenant": req.Tenant,
	})
	if req.Network != "" && req.Network != "none" {
		return refuse("request", fmt.Errorf("network mode %q is not available: every sandbox has a private network namespace with loopback only (--network none)", req.Network))
	}
	img, err := e.verifyImage(req.Image, t)
	if err != nil {
		return nil, err
	}
	rootfs, err := e.imageRootfs(img.Desc)
	if err != nil {
		return refuse("rootfs", err)
	}
	spec, profile, err := buildSpec(req, img.Config.Config, rootfs, id)
	if err != nil {
		return refuse("spec", err)
	}
	spec.Annotations[AnnotationRequest] = req.ID
	spec.Annotations[AnnotationImage] = req.Image
	spec.Annotations[AnnotationDigest] = img.Desc.Digest.String()

	rt, err := e.runtime(req.Tenant, t)
	if err != nil {
		return refuse("sandbox", err)
	}
	eff, raises, floorRefusal, asked, err := floor(rt, spec)
	if err != nil {
		t.add(audit.TypeContainer, "floor.refused", map[string]string{"error": err.Error()})
		return nil, err
	}
	pctx := policy.Context{
		Tenant:         req.Tenant,
		Identity:       policy.Identity{UID: uint32(req.Identity.UID), GID: uint32(req.Identity.GID), Principal: req.Identity.Principal},
		Operation:      policy.OpRun,
		Image:          &policy.Image{Reference: req.Image, Digest: img.Desc.Digest.String(), Verified: true, SignerRole: img.Target.Role},
		Privileged:     req.Privileged,
		Raises:         policyRaises(raises),
		SeccompProfile: profile,
		// The floor always applies Landlock (and SELinux/AppArmor where the host has them).
		MACLayer: "landlock",
	}
	decide := func() (*policy.Request, policy.Decision, error) {
		preq, err := policy.Build(eff, pctx)
		if err != nil {
			return nil, policy.Decision{}, fmt.Errorf("policy input: %w", err)
		}
		preq.Capabilities = unionCaps(preq.Capabilities, asked)
		floorSeccomp(preq, eff, profile)
		d, err := e.decide(context.WithoutCancel(ctx), preq, t)
		return preq, d, err
	}
	preq, d, err := decide()
	if err != nil {
		return refuse("policy", err)
	}
	var constrained []sandbox.Raise
	if !d.Allow && onlyDefaultsAboveMax(d, req) {
		// The caller asked for no limit and the floor's default is above the tenant's maximum:
		// the tenant's maximum is the stricter limit, so apply it and decide again.
		constrained = applyConstraints(eff, d.Constraints)
		t.add(audit.TypePolicy, "constraints", raisesAttrs(constrained))
		pctx.Raises = policyRaises(append(append([]sandbox.Raise{}, raises...), constrained...))
		if preq, d, err = decide(); err != nil {
			return refuse("policy", err)
		}
	}
	plan := &Plan{Request: req, ID: id, Image: ImageRef{Reference: req.Image, Digest: img.Desc.Digest.String()},
		Spec: eff, Raises: append(raises, constrained...), Decision: d, InputDigest: policy.InputDigest(preq), SeccompProfile: profile, trail: t}
	if !d.Allow {
		return plan, &DeniedError{Decision: d}
	}
	if req.Privileged && floorRefusal == nil {
		floorRefusal = fmt.Errorf("%w: privileged sandboxes do not exist (there is no way below the floor)", sandbox.ErrFloor)
	}
	if floorRefusal != nil {
		// A policy that allows what the floor never grants changes nothing.
		t.add(audit.TypeContainer, "floor.refused", map[string]string{"error": floorRefusal.Error()})
		return nil, floorRefusal // the plan was decided without the refused capabilities
	}
	if changes := applyConstraints(eff, d.Constraints); len(changes) > 0 {
		plan.Raises = append(plan.Raises, changes...)
		t.add(audit.TypePolicy, "constraints", raisesAttrs(changes))
	}
	t.add(audit.TypeContainer, "floor.raises", raisesAttrs(plan.Raises))
	return plan, nil
}

// floor applies the sandbox floor. The floor refuses forbidden capabilities outright; so that the
// denial still comes from policy with a reason per capability, the spec is floored without the
// requested capabilities and policy is shown what was asked. Whatever policy says, such a
// request never runs: the floor's refusal is returned with it.
func floor(rt *sandbox.Runtime, spec *specs.Spec) (eff *specs.Spec, raises []sandbox.Raise, refusal error, asked []string, err error) {
	eff, raises, err = rt.Floor(spec)
	if err == nil || !errors.Is(err, sandbox.ErrFloor) || spec.Process.Capabilities == nil {
		return eff, raises, nil, nil, err
	}
	stripped := *spec
	proc := *spec.Process
	proc.Capabilities = nil
	stripped.Process = &proc
	eff, raises, err2 := rt.Floor(&stripped)
	if err2 != nil {
		return nil, nil, nil, nil, err
	}
	for _, c := range spec.Process.Capabilities.Bounding {
		asked = append(asked, policy.NormalizeCapability(c))
	}
	return eff, raises, err, asked, nil
}

func unionCaps(have, add []string) []string {
	seen := map[string]bool{}
	for _, c := range have {
		seen[c] = true
	}
	for _, c := range add {
		if !seen[c] {
			have = append(have, c)
			seen[c] = true
		}
	}
	return have
}

func policyRaises(rs []sandbox.Raise) []policy.Raise {
	out := make([]policy.Raise, len(rs))
	for i, r := range rs {
		out[i] = policy.Raise{Field: r.Field, From: r.From, To: r.To}
	}
	return out
}

// floorSeccomp tells policy about the floor's own allowlist. A spec without a seccomp profile
// looks "unconfined" to the request builder, but the sandbox always loads the default program;
// only an explicit --security-opt seccomp=unconfined is shown as unconfined.
func floorSeccomp(preq *policy.Request, eff *specs.Spec, profile string) {
	if eff.Linux.Seccomp != nil || profile == "unconfined" {
		return
	}
	def := profiles.DefaultSeccomp()
	raw, _ := json.Marshal(def) // as policy.Build digests a spec profile
	preq.Seccomp = policy.Seccomp{Profile: "default", Digest: digest.FromBytes(raw).String(), DefaultAction: string(def.DefaultAction)}
}

// onlyDefaultsAboveMax reports whether every reason of a denial is a memory or pids limit above
// the tenant's maximum that the caller did not ask for (the floor's default).
func onlyDefaultsAboveMax(d policy.Decision, req *Request) bool {
	if len(d.Reasons) == 0 {
		return false
	}
	for _, r := range d.Reasons {
		switch {
		case r.Code == "MEMORY_LIMIT_ABOVE_MAX" && req.Memory == 0 && d.Constraints.MaxMemory != nil:
		case r.Code == "PIDS_LIMIT_ABOVE_MAX" && req.PidsLimit == 0 && d.Constraints.MaxPids != nil:
		default:
			return false
		}
	}
	return true
}

// applyConstraints makes each limit the stricter of the request and the policy's constraint
// and returns what changed.
func applyConstraints(eff *specs.Spec, c policy.Constraints) []sandbox.Raise {
	before := eff.Linux.Resources
	after := c.Apply(before)
	var changes []sandbox.Raise
	if m := after.Memory; m != nil && m.Limit != nil {
		if before == nil || before.Memory == nil || before.Memory.Limit == nil || *before.Memory.Limit != *m.Limit {
			changes = append(changes, sandbox.Raise{Field: "linux.resources.memory.limit", From: limitString(before, true), To: strconv.FormatInt(*m.Limit, 10) + " (policy constraint)"})
		}
		if m.Swap != nil && *m.Swap > *m.Limit {
			// memory+swap never above the memory limit: no swap, as the floor sets it.
			lim := *m.Limit
			m.Swap = &lim
		}
	}
	if p := after.Pids; p != nil && p.Limit != nil {
		if before == nil || before.Pids == nil || before.Pids.Limit == nil || *before.Pids.Limit != *p.Limit {
			changes = append(changes, sandbox.Raise{Field: "linux.resources.pids.limit", From: limitString(before, false), To: strconv.FormatInt(*p.Limit, 10) + " (policy constraint)"})
		}
	}
	eff.Linux.Resources = after
	return changes
}

func limitString(r *specs.LinuxResources, memory bool) string {
	switch {
	case r == nil:
	case memory && r.Memory != nil && r.Memory.Limit != nil:
		return strconv.FormatInt(*r.Memory.Limit, 10)
	case !memory && r.Pids != nil && r.Pids.Limit != nil:
		return strconv.FormatInt(*r.Pids.Limit, 10)
	}
	return "unset"
}
