package runcgate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/policy"
	"bulwark.dev/bulwark/profiles"
	"bulwark.dev/bulwark/sandbox"
)

// The events and helpers below are those of engine's run path (engine/audit.go, changes.go,
// prepare.go), so `bulwark audit` shows a bulwark-runc decision exactly as a `bulwark run` one.

// trail collects one request's events and appends them as one batch (one fsync).
type trail struct {
	log *audit.Log
	// async carries the result of an append started by flushAsync.
	async chan error

	mu      sync.Mutex // guards base and pending
	base    audit.Event
	pending []audit.Event
}

func newTrail(log *audit.Log, uid int, tenant, containerID string) *trail {
	var b [6]byte
	rand.Read(b[:])
	return &trail{log: log, base: audit.Event{
		Actor: audit.Actor{UID: &uid}, Tenant: tenant, ContainerID: containerID,
		RequestID: hex.EncodeToString(b[:]),
	}}
}

func (t *trail) add(typ, action string, attrs map[string]string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ev := t.base
	ev.Type, ev.Action, ev.Attrs = typ, action, attrs
	t.pending = append(t.pending, ev)
}

func (t *trail) take() []audit.Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	evs := t.pending
	t.pending = nil
	return evs
}

func (t *trail) flush() error {
	evs := t.take()
	if len(evs) == 0 {
		return nil
	}
	if _, err := t.log.Append(evs...); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// flushAsync starts appending what is queued; waitAsync returns the append's error.
func (t *trail) flushAsync() {
	t.async = make(chan error, 1)
	go func() { t.async <- t.flush() }()
}

func (t *trail) waitAsync() error { return <-t.async }

// RecordDecision implements policy.DecisionRecorder: every decision, allow or deny, with the
// digest of the input it was made on.
func (t *trail) RecordDecision(r policy.DecisionRecord) {
	codes := make([]string, len(r.Reasons))
	for i, reason := range r.Reasons {
		codes[i] = reason.Code
	}
	reasons, _ := json.Marshal(r.Reasons)
	result := "deny"
	if r.Allow {
		result = "allow"
	}
	t.add(audit.TypePolicy, "decision", map[string]string{
		"operation":    string(r.Operation),
		"input_digest": r.InputDigest,
		"result":       result,
		"reason_codes": fmt.Sprint(codes),
		"reasons":      string(reasons),
		"revision":     r.Revision,
		"duration_ns":  strconv.FormatInt(r.Duration.Nanoseconds(), 10),
	})
}

// preparePolicy prepares p and returns the attributes of a policy.bundle-accepted event when
// doing so raised the root's accepted bundle revision to p's (nil otherwise): policy.NewEngine
// records the revision after a successful prepare, so the record before and after tells.
func preparePolicy(ctx context.Context, root string, p *policy.Policy, opts ...policy.Option) (*policy.Engine, map[string]string, error) {
	if p.Info.Source != policy.SourceBundle {
		pe, err := policy.NewEngine(ctx, p, opts...)
		return pe, nil, err
	}
	before, had, err := policy.ReadAcceptedRevision(root)
	if err != nil {
		return nil, nil, err
	}
	pe, err := policy.NewEngine(ctx, p, opts...)
	if err != nil {
		return nil, nil, err
	}
	after, ok, err := policy.ReadAcceptedRevision(root)
	if err != nil {
		return nil, nil, err
	}
	if !ok || strconv.FormatUint(after.Revision, 10) != p.Info.Revision || had && after == before {
		return pe, nil, nil
	}
	attrs := map[string]string{
		"revision": strconv.FormatUint(after.Revision, 10), "digest": after.Digest, "location": p.Info.Location,
	}
	if had {
		attrs["previous_revision"] = strconv.FormatUint(before.Revision, 10)
		attrs["previous_digest"] = before.Digest
	}
	return pe, attrs, nil
}

// floorSeccomp tells policy about the floor's own allowlist: a spec without a seccomp profile
// looks "unconfined" to the request builder, but the sandbox always loads the default program.
func floorSeccomp(preq *policy.Request, eff *specs.Spec) {
	if eff.Linux.Seccomp != nil {
		return
	}
	def := profiles.DefaultSeccomp()
	raw, _ := json.Marshal(def) // as policy.Build digests a spec profile
	preq.Seccomp = policy.Seccomp{Profile: "default", Digest: digest.FromBytes(raw).String(), DefaultAction: string(def.DefaultAction)}
}

// applyConstraints makes each limit the stricter of the effective spec's and the policy's
// constraint and returns what changed.
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

func policyRaises(rs []sandbox.Raise) []policy.Raise {
	out := make([]policy.Raise, len(rs))
	for i, r := range rs {
		out[i] = policy.Raise{Field: r.Field, From: r.From, To: r.To}
	}
	return out
}

// raisesAttrs renders raises as one event's attributes.
func raisesAttrs(raises []sandbox.Raise) map[string]string {
	b, _ := json.Marshal(raises)
	return map[string]string{"count": strconv.Itoa(len(raises)), "raises": string(b)}
}

// jsonString renders v as JSON for an audit attribute (argument lists keep their boundaries).
func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
