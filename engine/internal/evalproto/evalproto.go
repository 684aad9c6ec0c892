// Package evalproto is the protocol between a process that links no OPA (bulwark-runc, the bulwark
// CLI) and the policy evaluator (bulwark-policy, engine/runcgate/evaluator), which such a process
// executes only for a request its decision cache cannot answer. One evaluator serves one request
// (a runtime operation, or one CLI command); each message is one JSON value on the evaluator's
// standard input or output:
//
//	caller                                   evaluator
//	Hello{build, policy source, audit-only annotations} →
//	                                   ←     Prepared{load, prepare, policy info, bundle accepted,
//	                                                  what the decision cache may keep | error}
//	Ask{request document, its digest}  →     (once per decision the request needs; or a quota
//	                                   ←     Answer{decision, digest decided on,   or storage
//	                                                  storable | error}              request)
//	(standard input closed)            →     exits
//
// Any error, a digest that differs from the caller's, or a message that does not decode is a
// refusal of the caller's request (fail closed).
package evalproto

import (
	"context"
	"io"
	"time"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/policy/document"
)

// Hello opens the conversation: the caller's build stamp (an evaluator of another build answers
// with an error), the policy to load and prepare, and the annotations that only identify a
// request (document.OpenCache's auditOnly), which Prepared says whether the policy ever reads.
type Hello struct {
	Build     string                 `json:"build"`
	Source    document.SourceOptions `json:"source"`
	AuditOnly []string               `json:"audit_only,omitempty"`
}

// Prepared answers Hello: how long loading and preparing took, the policy's info, the
// attributes of a policy.bundle-accepted event if preparing raised the state root's accepted
// bundle revision, and what the decision cache may keep of the policy's decisions
// (document.Storable): Deterministic, and AuditOnlyUnread, whether it never reads any of the
// Hello's audit-only annotations.
type Prepared struct {
	Error           string            `json:"error,omitempty"`
	Load            time.Duration     `json:"load"`
	Prepare         time.Duration     `json:"prepare"`
	Info            document.Info     `json:"info"`
	Accepted        map[string]string `json:"accepted,omitempty"`
	Deterministic   bool              `json:"deterministic"`
	AuditOnlyUnread bool              `json:"audit_only_unread"`
}

// Ask is one request document to decide, with the digest the caller computed of it; or one
// quota or storage request (the policy's side decisions), exactly one of the three.
type Ask struct {
	Request *document.Request        `json:"request,omitempty"`
	Input   string                   `json:"input,omitempty"`
	Quota   *document.QuotaRequest   `json:"quota,omitempty"`
	Storage *document.StorageRequest `json:"storage,omitempty"`
}

// Answer is the decision on an Ask: Input is the digest of the document the evaluator decided
// (the caller refuses any other), Deterministic whether the policy may be cached at all
// (document.Storable); Quota or Storage answer a side decision.
type Answer struct {
	Error         string                    `json:"error,omitempty"`
	Decision      document.Decision         `json:"decision"`
	Input         string                    `json:"input"`
	Deterministic bool                      `json:"deterministic"`
	Quota         *document.QuotaDecision   `json:"quota,omitempty"`
	Storage       *document.StorageDecision `json:"storage,omitempty"`
}

// Evaluator is where a caller sends the requests its decision cache cannot answer.
type Evaluator struct {
	// Identity is the stat of the evaluator's executable file: its build embeds the default
	// policy, so it is part of the decision cache's key (document.BuildDigest).
	Identity unix.Stat_t
	// Caller is the running binary's stat, taken when Identity was (the helper beside it); zero
	// for an evaluator that is not a file beside it (tests).
	Caller unix.Stat_t
	// Start starts one conversation: the caller writes to in and reads from out; wait, once in
	// is closed, waits for the evaluator to end and reports how it failed, if it did.
	Start func(ctx context.Context) (in io.WriteCloser, out io.Reader, wait func() error, err error)
}

// BuildDigest is document.BuildDigest of the running binary and the evaluator, from the stats
// taken when the evaluator was found (one stat of /proc/self/exe, ≈ 15 µs of bulwark-runc's
// policy step, not taken twice).
func (e *Evaluator) BuildDigest() string {
	if e.Caller.Ino == 0 {
		return document.BuildDigest(&e.Identity)
	}
	return document.BuildDigestOf(&e.Caller, &e.Identity)
}
