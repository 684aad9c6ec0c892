package engine

import (
	"context"
	"errors"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/engine/internal/gate"
	"bulwark.dev/bulwark/errdefs"
	"bulwark.dev/bulwark/internal/names"
	"bulwark.dev/bulwark/policy/document"
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
	t.SetContainer(id)
	clk := e.newStepClock(id)
	plan, err := e.prepare(ctx, req, id, t, clk)
	// An allowed plan's records go out with the create record (Start); a refusal or a dry run
	// ends here, so its records must be durable now.
	if err != nil || req.DryRun {
		if ferr := t.Flush(); ferr != nil {
			return nil, errors.Join(err, ferr)
		}
	}
	return plan, err
}

func (e *Engine) prepare(ctx context.Context, req *Request, id string, t *trail, clk *stepClock) (*Plan, error) {
	t.Add(audit.TypeEngine, "request", map[string]string{
		"image": req.Image, "args": gate.JSONString(req.Args), "detach": strconv.FormatBool(req.Detach),
		"remove": strconv.FormatBool(req.Remove), "dry_run": strconv.FormatBool(req.DryRun),
	})
	refuse := func(step string, err error) (*Plan, error) {
		t.Add(audit.TypeEngine, "refused", map[string]string{"step": step, "error": err.Error()})
		return nil, err
	}
	if !names.Object(id) {
		// The name becomes a directory name under the state root: no separators, no "..".
		return refuse("request", errdefs.Errorf(errdefs.ErrInvalidArgument, "container name %q: want [A-Za-z0-9][A-Za-z0-9_.-]{0,127}", id))
	}
	if err := checkRestart(req); err != nil {
		return refuse("request", err)
	}
	if !names.Tenant(req.Tenant) {
		return refuse("identity", errdefs.Errorf(errdefs.ErrInvalidArgument, "tenant %q: want [a-z0-9][a-z0-9-]{0,62}", req.Tenant))
	}
	t.Add(audit.TypeEngine, "identity", map[string]string{
		"uid": strconv.Itoa(req.Identity.UID), "gid": strconv.Itoa(req.Identity.GID), "tenant": req.Tenant,
	})
	attached, err := e.checkNetwork(req)
	if err != nil {
		return refuse("request", errdefs.Errorf(errdefs.ErrInvalidArgument, "%v", err))
	}
	clk.lap("request")
	img, err := e.verify(req.Image, false, true, t, clk)
	if err != nil {
		return nil, err
	}
	if err := e.publishExposed(req, img.Config.Config.ExposedPorts); err != nil {
		return refuse("request", errdefs.Wrap(errdefs.ErrInvalidArgument, err))
	}
	rootfs, err := e.imageRootfs(img)
	if err != nil {
		return refuse("rootfs", err)
	}
	defer rootfs.Close()
	clk.lap("rootfs")
	spec, profile, err := buildSpec(req, img.Config.Config, rootfs, id)
	if err != nil {
		return refuse("spec", errdefs.Wrap(errdefs.ErrInvalidArgument, err))
	}
	addImageVolumes(spec, img.Config.Config.Volumes)
	planned, err := e.resolveVolumes(ctx, spec, rootfs, req.Tenant, req.DryRun, t)
	if err != nil {
		return refuse("volumes", err)
	}
	// Each bind source is resolved once: policy decides on, the audit records and the sandbox
	// mounts the same descriptor (a path walked again could be raced). A dry run's volumes not
	// made are decided on by the paths they would have (planned).
	spec, binds, err := sandbox.ResolveBindsPlanned(spec, "", planned)
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
	e.nameResolver(spec, attached)

	var upperSize int64
	if req.WritableRoot {
		if upperSize, err = e.writableRootSize(ctx, req.Tenant, t); err != nil {
			return refuse("policy", err)
		}
	}
	rt, err := e.runtimeFor(req.Tenant, t, req.WritableRoot, nil)
	if err != nil {
		return refuse("sandbox", err)
	}
	clk.lap("spec")
	netName, publish, egress, err := policyNetwork(req)
	var bandwidth *document.Bandwidth
	if err == nil {
		bandwidth, err = requestBandwidth(netName, req.NetworkRate)
	}
	if err != nil {
		return refuse("request", errdefs.Errorf(errdefs.ErrInvalidArgument, "%v", err))
	}
	out, err := gate.Decide(context.WithoutCancel(ctx), gate.Request{
		Runtime: rt, Spec: spec, Binds: binds, Trail: t.Trail,
		Context: document.Context{
			Tenant:         req.Tenant,
			Identity:       document.Identity{UID: uint32(req.Identity.UID), GID: uint32(req.Identity.GID), Principal: req.Identity.Principal},
			Operation:      document.OpRun,
			Image:          &document.Image{Reference: req.Image, Digest: img.Desc.Digest.String(), Verified: true, SignerRole: img.Target.Role},
			Privileged:     req.Privileged,
			SeccompProfile: profile,
			BindsResolved:  true,
			StateRoot:      e.cfg.Root,
			Network:        netName,
			Publish:        publish,
			Egress:         egress,
			Bandwidth:      bandwidth,
		},
		MemoryUnset: req.Memory == 0, PidsUnset: req.PidsLimit == 0,
		// The defaults asked for on the caller's behalf are cut to what policy grants the
		// tenant (its constraints say so as data), not asked for and denied.
		Withdraw: func(eff *specs.Spec, c document.Constraints) []sandbox.Raise {
			if rs := dropUngrantedDefaults(eff, req, c.Capabilities); rs != nil {
				return []sandbox.Raise{*rs}
			}
			return nil
		},
		Decide: func(ctx context.Context, preq *document.Request, digest string) (document.Decision, error) {
			return e.decide(ctx, preq, digest, t)
		},
	})
	if out == nil {
		return nil, err
	}
	plan := &Plan{Request: req, ID: id, Policy: e.policySource(), Image: ImageRef{Reference: req.Image, Digest: img.Desc.Digest.String(), Layers: rootfs.diffIDs()},
		Spec: out.Floor.Spec, Raises: out.Raises(), Decision: out.Decision, InputDigest: out.InputDigest,
		SeccompProfile: profile, Seccomp: out.Floor.Seccomp, Network: out.Floor.Network, WritableRootSize: upperSize, trail: t, clock: clk, binds: binds, root: e.cfg.Root,
		layers: rootfs.rfs, floor: out.Floor}
	if err != nil {
		return plan, err
	}
	if plan.Egress, err = decidedEgress(req, netName, out.Decision.Constraints); err != nil {
		return refuse("policy", err)
	}
	if plan.Bandwidth, err = decidedBandwidth(netName, bandwidth, out.Decision.Constraints); err != nil {
		return refuse("policy", err)
	}
	// The container counts against its tenant's quotas from here (a dry run: is decided only)
	// until its record does.
	res := reservation{ID: id, Resources: plan.Resources(), Process: self()}
	if plan.releaseQuota, err = e.reserveQuota(ctx, req.Tenant, out.Decision.Constraints.Quotas, res, req.DryRun, t); err != nil {
		return refuse("quota", err)
	}
	t.Add(audit.TypeContainer, "floor.raises", gate.RaisesAttrs(plan.Raises))
	keep = !req.DryRun // a dry run is never started: its descriptors are released now
	clk.lap("policy")
	return plan, nil
}
