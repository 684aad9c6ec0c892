// Package evalproto is the protocol between bulwark-runc and its policy evaluator
// (bulwark-policy, engine/runcgate/evaluator), which bulwark-runc executes only for a request its
// decision cache cannot answer, so that the runtime binary links no OPA. One evaluator serves one
// runtime request; each message is one JSON value on the evaluator's standard input or output:
//
//	runtime                                  evaluator
//	Hello{build, policy source}        →
//	                                   ←     Prepared{load, prepare, bundle accepted | error}
//	Ask{request document, its digest}  →     (once per decision the request needs)
//	                                   ←     Answer{decision, digest decided on, storable | error}
//	(standard input closed)            →     exits
//
// Any error, a digest that differs from the runtime's, or a message that does not decode is a
// refusal of the runtime request (fail closed).
package evalproto

import (
	"context"
	"io"
	"time"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/policy/document"
)

// Hello opens the conversation: the runtime's build stamp (an evaluator of another build answers
// with an error) and the policy to load and prepare.
type Hello struct {
	Build  string                 `json:"build"`
	Source document.SourceOptions `json:"source"`
}

// Prepared answers Hello: how long loading and preparing took, and the attributes of a
// policy.bundle-accepted event if preparing raised the state root's accepted bundle revision.
type Prepared struct {
	Error    string            `json:"error,omitempty"`
	Load     time.Duration     `json:"load"`
	Prepare  time.Duration     `json:"prepare"`
	Accepted map[string]string `json:"accepted,omitempty"`
}

// Ask is one request document to decide, with the digest the runtime computed of it.
type Ask struct {
	Request *document.Request `json:"request"`
	Input   string            `json:"input"`
}

// Answer is the decision on an Ask: Input is the digest of the document the evaluator decided
// (the runtime refuses any other), Deterministic whether the policy may be cached at all
// (document.Storable).
type Answer struct {
	Error         string            `json:"error,omitempty"`
	Decision      document.Decision `json:"decision"`
	Input         string            `json:"input"`
	Deterministic bool              `json:"deterministic"`
}

// Evaluator is where a runtime sends the requests its decision cache cannot answer.
type Evaluator struct {
	// Identity is the stat of the evaluator's executable file: its build embeds the default
	// policy, so it is part of the decision cache's key (document.BuildDigest).
	Identity unix.Stat_t
	// Start starts one conversation: the runtime writes to in and reads from out; wait, once in
	// is closed, waits for the evaluator to end and reports how it failed, if it did.
	Start func(ctx context.Context) (in io.WriteCloser, out io.Reader, wait func() error, err error)
}
