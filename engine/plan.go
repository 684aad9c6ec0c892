package engine

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/image"
	"bulwark.dev/bulwark/network"
	"bulwark.dev/bulwark/policy/document"
	"bulwark.dev/bulwark/sandbox"
)

// DeniedError is a policy denial; it carries the whole decision so every reason can be shown.
type DeniedError = document.DeniedError

// Plan is a decided request: what will run (the effective spec after the floor and the policy's
// constraints) and why it may.
type Plan struct {
	Request  *Request          `json:"request"`
	ID       string            `json:"id"`
	Image    ImageRef          `json:"image"`
	Spec     *specs.Spec       `json:"effectiveSpec"`
	Raises   []sandbox.Raise   `json:"raises"`
	Decision document.Decision `json:"decision"`
	// InputDigest identifies the request document the decision was made on.
	InputDigest string `json:"inputDigest"`
	// SeccompProfile names the profile the spec carries ("default": the floor's own).
	SeccompProfile string `json:"seccompProfile"`
	// Seccomp are the programs the sandbox loads, in order (the floor's allowlist first).
	Seccomp []sandbox.SeccompProgram `json:"seccomp"`
	// Network is what the floor does to networking (no TCP port rule; the socket kinds refused).
	Network sandbox.NetworkFloor `json:"network"`
	// Egress is what the container may open connections to through its network (the request's,
	// else the tenant's from the decision's constraints); nil without a network.
	Egress *network.Egress `json:"egress,omitempty"`
	// Bandwidth are the container's rate limits on its network (the request's, a direction it
	// leaves unlimited at the tenant's maximum); nil: none.
	Bandwidth *network.Bandwidth `json:"bandwidth,omitempty"`
	// Policy is where the decision came from (kept with the container: its execs are decided
	// under the same policy).
	Policy PolicySource `json:"policy,omitzero"`
	// WritableRootSize is the size of the container's writable root, which policy granted (0:
	// the root is read-only; writableroot.go).
	WritableRootSize int64 `json:"writableRootSize,omitempty"`
	// BindSources name, for a detached run's monitor, the bind-source descriptors EncodePlan
	// hands it, in order.
	BindSources []string `json:"bindSources,omitempty"`

	// Stdin is a detached container's standard input, handed to its supervisor with the plan
	// (the caller keeps the other end of the pipe); nil: none.
	Stdin *os.File `json:"-"`

	trail *trail
	clock *stepClock // nil: not timed
	// root is the state root of the engine that prepared the plan (its supervisor's).
	root string
	// layers are the image's unpacked layers as Prepare found them (Image.Layers), for Start in
	// the same process; nil: Start finds them from Image.Layers (a plan handed over).
	layers *image.Rootfs
	// binds are the bind sources resolved before the decision; Start mounts from them and
	// closes them (Close, for a plan that is not started).
	binds *sandbox.BindSources
	// floor is the floor's result policy decided on, for Start in the same process to create
	// exactly it (sandbox.CreateFlooredFromLayers); nil: Start floors Spec again (a plan handed
	// over or read back, whose bind sources are resolved anew).
	floor *sandbox.FloorResult
	// releaseQuota ends the plan's quota reservation (quota.go): once its container's record
	// exists, or it will not be started. Nil: it holds none.
	releaseQuota func()
}

// Close releases what an allowed plan holds for Start (its bind-source descriptors and its
// quota reservation); Start does it itself.
func (p *Plan) Close() error {
	p.endReservation()
	return p.binds.Close()
}

// endReservation ends the plan's quota reservation, if it holds one.
func (p *Plan) endReservation() {
	if p.releaseQuota != nil {
		p.releaseQuota()
		p.releaseQuota = nil
	}
}

// ImageRef names the verified image a plan runs.
type ImageRef struct {
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
	// Layers are the diff_ids of the image's layers, bottom first: the container's root.
	Layers []string `json:"layers,omitempty"`
}

// PlanJSON renders a plan for --dry-run. The effective spec's seccomp profile (hundreds of
// rules) is shown as the stack of programs the sandbox loads: each one's source, digest, default
// action and rule count.
func PlanJSON(p *Plan) ([]byte, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if sp, ok := m["effectiveSpec"].(map[string]any); ok {
		if lx, ok := sp["linux"].(map[string]any); ok {
			lx["seccomp"] = m["seccomp"]
		}
	}
	delete(m, "seccomp")
	return json.MarshalIndent(m, "", "  ")
}

// Summary is a few lines for people: the decision, its reasons and the floor's raises.
func (p *Plan) Summary() string {
	var b strings.Builder
	result := "DENY"
	if p.Decision.Allow {
		result = "ALLOW"
	}
	fmt.Fprintf(&b, "policy decision: %s (revision %s, input %s, %s)\n", result, p.Decision.Revision, p.InputDigest, p.Decision.Duration)
	for _, r := range p.Decision.Reasons {
		fmt.Fprintf(&b, "  reason %s: %s [%s]\n", r.Code, r.Message, r.Path)
	}
	fmt.Fprintf(&b, "image: %s @ %s (TUF-verified)\n", p.Image.Reference, p.Image.Digest)
	fmt.Fprintf(&b, "floor raises: %d\n", len(p.Raises))
	for _, r := range p.Raises {
		from := r.From
		if from == "" {
			from = "(unset)"
		}
		fmt.Fprintf(&b, "  %s: %s -> %s\n", r.Field, from, r.To)
	}
	fmt.Fprintf(&b, "network: %s namespace; %s\n", p.Network.Namespace, p.Network.TCP)
	for _, s := range p.Network.RefusedSockets {
		fmt.Fprintf(&b, "  socket refused (%s): %s\n", s.Errno, s.Reason)
	}
	if p.Egress != nil {
		fmt.Fprintf(&b, "egress: %s (never other networks, the host's own services or 169.254.0.0/16)\n", p.Egress)
	}
	if p.Bandwidth != nil {
		fmt.Fprintf(&b, "network rate: %s\n", p.Bandwidth)
	}
	return b.String()
}
