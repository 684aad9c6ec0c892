// Package gate is the decision path every entry point shares (engine's run and exec, and
// bulwark-runc's create, run and exec through engine/runcgate): the one sequence floor →
// request document → decision → constraints (Decide), the request-scoped audit trail (Trail),
// noticing a newly accepted policy bundle, and the audit events of decisions, raises and
// constraints. It depends on policy's request document (policy/document), audit and sandbox only,
// so that runcgate can use it without linking the rest of engine (the image store, TUF and
// registry clients) nor OPA into the runtime binary: the policy is evaluated by whoever supplies
// Request.Decide.
package gate

import (
	"encoding/json"
	"fmt"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/policy/document"
	"bulwark.dev/bulwark/sandbox"
)

// BundleWatch tells whether preparing a policy raised the state root's accepted bundle
// revision (the rollback floor that policy.NewEngine records after a successful prepare) to
// that policy's, by comparing the record before (WatchBundle) and after (Accepted). Two
// processes loading the same new bundle at once may both report it; a newer revision accepted
// meanwhile by another process is left to that one to report.
//
// The caller prepares the policy between the two (this package links no OPA).
type BundleWatch struct {
	root   string
	info   document.Info
	before document.AcceptedRevision
	had    bool
}

// WatchBundle reads root's accepted revision before the policy info describes is prepared
// (nothing for a policy that is not a signed bundle).
func WatchBundle(root string, info document.Info) (BundleWatch, error) {
	w := BundleWatch{root: root, info: info}
	if info.Source != document.SourceBundle {
		return w, nil
	}
	var err error
	w.before, w.had, err = document.ReadAcceptedRevision(root)
	return w, err
}

// Accepted returns, once the policy is prepared, the attributes of a policy.bundle-accepted
// event if preparing it raised the accepted revision to the policy's; nil otherwise.
func (w BundleWatch) Accepted() (map[string]string, error) {
	if w.info.Source != document.SourceBundle {
		return nil, nil
	}
	after, ok, err := document.ReadAcceptedRevision(w.root)
	if err != nil {
		return nil, err
	}
	if !ok || strconv.FormatUint(after.Revision, 10) != w.info.Revision || w.had && after == w.before {
		return nil, nil
	}
	attrs := map[string]string{
		"revision": strconv.FormatUint(after.Revision, 10), "digest": after.Digest, "location": w.info.Location,
	}
	if w.had {
		attrs["previous_revision"] = strconv.FormatUint(w.before.Revision, 10)
		attrs["previous_digest"] = w.before.Digest
	}
	return attrs, nil
}

// ApplyConstraints makes each limit the stricter of the effective spec's and the policy's
// constraint and returns what changed.
func ApplyConstraints(eff *specs.Spec, c document.Constraints) []sandbox.Raise {
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

// OnlyUnsetLimitsAboveMax reports whether every reason of a denial is a memory or pids limit
// above the tenant's maximum that the caller did not set (memUnset, pidsUnset), so the floor's
// default is what is above: the tenant's maximum is then the stricter limit to apply.
func OnlyUnsetLimitsAboveMax(d document.Decision, memUnset, pidsUnset bool) bool {
	if len(d.Reasons) == 0 {
		return false
	}
	for _, r := range d.Reasons {
		switch {
		case r.Code == "MEMORY_LIMIT_ABOVE_MAX" && memUnset && d.Constraints.MaxMemory != nil:
		case r.Code == "PIDS_LIMIT_ABOVE_MAX" && pidsUnset && d.Constraints.MaxPids != nil:
		default:
			return false
		}
	}
	return true
}

// PolicyRaises is the floor's raises as policy's request document shows them.
func PolicyRaises(rs []sandbox.Raise) []document.Raise {
	out := make([]document.Raise, len(rs))
	for i, r := range rs {
		out[i] = document.Raise{Field: r.Field, From: r.From, To: r.To}
	}
	return out
}

// The attributes below are what `bulwark audit` shows, the same for a `bulwark run` and a
// bulwark-runc request.

// Recorder implements document.DecisionRecorder by queueing every decision, allow or deny, as a
// policy.decision event (with the digest of the input it was made on) through the request's
// trail.
type Recorder func(typ, action string, attrs map[string]string)

// RecordDecision implements document.DecisionRecorder.
func (add Recorder) RecordDecision(r document.DecisionRecord) {
	codes := make([]string, len(r.Reasons))
	for i, reason := range r.Reasons {
		codes[i] = reason.Code
	}
	reasons := reasonsJSON(r.Reasons)
	result := "deny"
	if r.Allow {
		result = "allow"
	}
	attrs := map[string]string{
		"operation":    string(r.Operation),
		"input_digest": r.InputDigest,
		"result":       result,
		"reason_codes": fmt.Sprint(codes),
		"reasons":      reasons,
		"revision":     r.Revision,
		"duration_ns":  strconv.FormatInt(r.Duration.Nanoseconds(), 10),
	}
	if r.Cached {
		attrs["cached"] = "true"
	}
	add(audit.TypePolicy, "decision", attrs)
}

// reasonsJSON is json.Marshal(rs), written without encoding/json (see JSONString).
func reasonsJSON(rs []document.Reason) string {
	return objectsJSON(rs == nil, len(rs), func(i int) []string {
		return []string{"code", rs[i].Code, "message", rs[i].Message, "path", rs[i].Path}
	})
}

// objectsJSON is json.Marshal of a slice (null if isNil) of n structs of string fields, written
// without encoding/json: fields(i) are the i-th one's keys (plain, in order) and values, paired.
func objectsJSON(isNil bool, n int, fields func(i int) []string) string {
	if isNil {
		return "null"
	}
	b := []byte{'['}
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		sep := byte('{')
		kv := fields(i)
		for j := 0; j < len(kv); j += 2 {
			b = append(append(append(b, sep, '"'), kv[j]...), '"', ':')
			b = document.AppendJSONString(b, kv[j+1])
			sep = ','
		}
		b = append(b, '}')
	}
	return string(append(b, ']'))
}

// RaisesAttrs renders raises (the floor's, or the policy's constraints) as one event's attributes:
// their JSON is json.Marshal(raises), written without encoding/json (see JSONString), whose first
// Marshal of the type cost a run ≈ 0.05 ms before its sandbox is created.
func RaisesAttrs(raises []sandbox.Raise) map[string]string {
	b := objectsJSON(raises == nil, len(raises), func(i int) []string {
		return []string{"field", raises[i].Field, "from", raises[i].From, "to", raises[i].To}
	})
	return map[string]string{"count": strconv.Itoa(len(raises)), "raises": b}
}

// NetworkAttrs renders what the floor does to networking as one event's attributes: a socket
// call the floor refuses is traced to its reason in the audit log.
func NetworkAttrs(n sandbox.NetworkFloor) map[string]string {
	refused, ok := sandbox.RefusedSocketsJSON(n.RefusedSockets) // the floor's own: kept as text
	if !ok {
		refused = refusedSocketsJSON(n.RefusedSockets)
	}
	return map[string]string{"namespace": n.Namespace, "tcp": n.TCP, "refused_sockets": refused}
}

// refusedSocketsJSON is json.Marshal(rs), written without encoding/json (see JSONString): every
// bulwark-runc start records it.
func refusedSocketsJSON(rs []sandbox.RefusedSocket) string {
	return objectsJSON(rs == nil, len(rs), func(i int) []string {
		return []string{"errno", rs[i].Errno, "reason", rs[i].Reason}
	})
}

// JSONString renders v as JSON for an audit attribute (argument lists keep their boundaries). A
// []string, the common case (argument lists), is written without encoding/json, whose first use
// of a type costs bulwark-runc's start path tens of microseconds; the text is the same.
func JSONString(v any) string {
	if ss, ok := v.([]string); ok {
		if ss == nil {
			return "null"
		}
		b := []byte{'['}
		for i, s := range ss {
			if i > 0 {
				b = append(b, ',')
			}
			b = document.AppendJSONString(b, s)
		}
		return string(append(b, ']'))
	}
	b, _ := json.Marshal(v)
	return string(b)
}
