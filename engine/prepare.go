package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/engine/internal/gate"
	"bulwark.dev/bulwark/policy"
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
		"image": req.Image, "args": gate.JSONString(req.Args), "detach": strconv.FormatBool(req.Detach),
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
	// Each bind source is resolved once: policy decides on, the audit records and the sandbox
	// mounts the same descriptor (a path walked again could be raced).
	spec, binds, err := sandbox.ResolveBinds(spec, "")
	if err != nil {
		return refuse("mounts", err)
	}
	keep := false
	defer func() {
		if !keep {
			binds.Close()
		}
	}()
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
		Raises:         gate.PolicyRaises(raises),
		SeccompProfile: profile,
		BindsResolved:  true,
		// The floor always applies Landlock (and SELinux/AppArmor where the host has them).
		MACLayer: "landlock",
	}
	decide := func() (*policy.Request, policy.Decision, error) {
		preq, err := policy.Build(eff, pctx)
		if err != nil {
			return nil, policy.Decision{}, fmt.Errorf("policy input: %w", err)
		}
		preq.Capabilities = unionCaps(preq.Capabilities, asked)
		if profile != "unconfined" {
			// Only an explicit --security-opt seccomp=unconfined is shown as unconfined.
			gate.FloorSeccomp(preq, eff)
		}
		d, err := e.decide(context.WithoutCancel(ctx), preq, t)
		return preq, d, err
	}
	preq, d, err := decide()
	if err != nil {
		return refuse("policy", err)
	}
	var constrained []sandbox.Raise
	if !d.Allow {
		// The defaults asked for on the caller's behalf are cut to what policy grants the
		// tenant (its constraints say so as data), not asked for and denied.
		if rs := dropUngrantedDefaults(eff, req, d.Constraints.Capabilities); rs != nil {
			constrained = append(constrained, *rs)
			t.add(audit.TypePolicy, "constraints", gate.RaisesAttrs(constrained))
			pctx.Raises = gate.PolicyRaises(append(append([]sandbox.Raise{}, raises...), constrained...))
			if preq, d, err = decide(); err != nil {
				return refuse("policy", err)
			}
		}
	}
	if !d.Allow && gate.OnlyUnsetLimitsAboveMax(d, req.Memory == 0, req.PidsLimit == 0) {
		// The caller asked for no limit and the floor's default is above the tenant's maximum:
		// the tenant's maximum is the stricter limit, so apply it and decide again.
		limits := gate.ApplyConstraints(eff, d.Constraints)
		t.add(audit.TypePolicy, "constraints", gate.RaisesAttrs(limits))
		constrained = append(constrained, limits...)
		pctx.Raises = gate.PolicyRaises(append(append([]sandbox.Raise{}, raises...), constrained...))
		if preq, d, err = decide(); err != nil {
			return refuse("policy", err)
		}
	}
	plan := &Plan{Request: req, ID: id, Image: ImageRef{Reference: req.Image, Digest: img.Desc.Digest.String()},
		Spec: eff, Raises: append(raises, constrained...), Decision: d, InputDigest: policy.InputDigest(preq), SeccompProfile: profile, trail: t, binds: binds}
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
	if changes := gate.ApplyConstraints(eff, d.Constraints); len(changes) > 0 {
		plan.Raises = append(plan.Raises, changes...)
		t.add(audit.TypePolicy, "constraints", gate.RaisesAttrs(changes))
	}
	t.add(audit.TypeContainer, "floor.raises", gate.RaisesAttrs(plan.Raises))
	keep = true
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
