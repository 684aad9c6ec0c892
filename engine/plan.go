package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/image"
	"bulwark.dev/bulwark/internal/specjson"
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

// planFields are a Plan's fields as json.Marshal writes them, in its order and with its tags, but
// for the spec's, always null (marshalPlan puts the spec there): encoding/json builds a struct's
// encoder with its fields' encoders, so marshalling a Plan even without its spec walked the whole
// type tree of the spec, ≈ 1 ms of a run's first marshalling. TestPlanFieldsArePlans checks the
// two types have the same fields.
type planFields struct {
	Request          *Request                 `json:"request"`
	ID               string                   `json:"id"`
	Image            ImageRef                 `json:"image"`
	Spec             *struct{}                `json:"effectiveSpec"`
	Raises           []sandbox.Raise          `json:"raises"`
	Decision         document.Decision        `json:"decision"`
	InputDigest      string                   `json:"inputDigest"`
	SeccompProfile   string                   `json:"seccompProfile"`
	Seccomp          []sandbox.SeccompProgram `json:"seccomp"`
	Network          sandbox.NetworkFloor     `json:"network"`
	Egress           *network.Egress          `json:"egress,omitempty"`
	Bandwidth        *network.Bandwidth       `json:"bandwidth,omitempty"`
	Policy           PolicySource             `json:"policy,omitzero"`
	WritableRootSize int64                    `json:"writableRootSize,omitempty"`
	BindSources      []string                 `json:"bindSources,omitempty"`
}

// specHole is what json.Marshal writes for planFields' spec.
const specHole = `"effectiveSpec":null`

// marshalPlan returns json.Marshal(p), the bytes of a container's plan.json and of a detached
// run's hand-over to its supervisor, with the effective spec encoded by specjson (the same bytes,
// without encoding/json's reflection over the spec's types, whose first use cost a run ≈ 1 ms on
// its path): the rest of the plan is marshalled as planFields, and the spec's JSON put in the place
// its null took. encoding/json escapes every quote inside a string, so that place is the one
// specHole outside any string. Should another field ever hold an object with that key and a
// null value, the count tells, and the plan is marshalled as a whole.
func marshalPlan(p *Plan) ([]byte, error) {
	spec, err := specjson.Encode(p.Spec)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(&planFields{Request: p.Request, ID: p.ID, Image: p.Image, Raises: p.Raises, Decision: p.Decision,
		InputDigest: p.InputDigest, SeccompProfile: p.SeccompProfile, Seccomp: p.Seccomp, Network: p.Network, Egress: p.Egress,
		Bandwidth: p.Bandwidth, Policy: p.Policy, WritableRootSize: p.WritableRootSize, BindSources: p.BindSources})
	if err != nil {
		return nil, err
	}
	if bytes.Count(b, []byte(specHole)) != 1 {
		return json.Marshal(p)
	}
	at := bytes.Index(b, []byte(specHole)) + len(specHole) - len("null")
	out := make([]byte, 0, len(b)-len("null")+len(spec))
	out = append(append(append(out, b[:at]...), spec...), b[at+len("null"):]...)
	return out, nil
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
