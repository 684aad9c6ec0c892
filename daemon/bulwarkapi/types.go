// Package bulwarkapi is the wire format of bulwarkd's own endpoints under /bulwark/v1/ (decision
// dry-run, trust status, audit tail and verification), shared by the daemon that serves them and
// the client that calls them. Errors are Docker's error document, as for the rest of the API.
package bulwarkapi

import (
	"encoding/json"
	"time"

	"bulwark.dev/bulwark/audit"
)

// The endpoints.
const (
	// PathDecide decides a run request without starting anything: POST, the body a Docker
	// container create request (as for POST /containers/create).
	PathDecide = "/bulwark/v1/decide"
	// PathTrust is the trust status: GET.
	PathTrust = "/bulwark/v1/trust"
	// PathAudit is the caller's audit records: GET, ?since=RFC3339|DURATION&limit=N.
	PathAudit = "/bulwark/v1/audit"
	// PathAuditVerify verifies the whole audit chain: GET.
	PathAuditVerify = "/bulwark/v1/audit/verify"
)

// Reason codes of a dry run refused before the policy decided (the policy's own codes are its).
const (
	CodeImageUntrusted = "IMAGE_UNTRUSTED"
	CodeFloorRefused   = "FLOOR_REFUSED"
)

// Reason is one reason of a decision.
type Reason struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Path    string `json:"path,omitempty"`
}

// DecideResponse is a dry run's answer: the decision with every reason, and, when the request
// got as far as the policy, the plan the daemon would run (the effective, floor-raised
// configuration, as bulwark run --dry-run prints it) and its summary for people.
type DecideResponse struct {
	Allow       bool            `json:"allow"`
	Reasons     []Reason        `json:"reasons"`
	Revision    string          `json:"revision,omitempty"`
	InputDigest string          `json:"input_digest,omitempty"`
	Summary     string          `json:"summary,omitempty"`
	Plan        json.RawMessage `json:"plan,omitempty"`
}

// TrustResponse is the trust status as a run would see it: the pinned repository and root,
// every role's verified version and expiry, and the signed tags the caller may use, by
// repository. A tenant sees the top-level targets role and its own delegated role; an operator
// sees every role.
type TrustResponse struct {
	Remote       string       `json:"remote"`
	RootDigest   string       `json:"root_digest"`
	Roles        []Role       `json:"roles"`
	Repositories []Repository `json:"repositories"`
}

// Role is one TUF role as verified.
type Role struct {
	Role      string    `json:"role"`
	Version   int64     `json:"version"`
	Expires   time.Time `json:"expires,omitzero"`
	Expired   bool      `json:"expired"`
	Threshold int       `json:"threshold"`
	Keys      int       `json:"keys"`
	Paths     []string  `json:"paths,omitempty"`
}

// Repository is an image name and its signed tags.
type Repository struct {
	Name string `json:"name"`
	Tags []Tag  `json:"tags"`
}

// Tag is one signed tag: the manifest digest it must be and the role that signed it.
type Tag struct {
	Tag    string `json:"tag"`
	Digest string `json:"digest"`
	Role   string `json:"role"`
}

// AuditResponse is the newest records the caller may read (its tenant's; an operator's: all),
// oldest first, at most the limit asked for.
type AuditResponse struct {
	Records []audit.Record `json:"records"`
	// More says older matching records were left out by the limit.
	More bool `json:"more"`
}

// VerifyResponse is the verification of the whole chain. The chain's size is the operator's to
// know; a tenant is told how many of its own records the verified chain holds.
type VerifyResponse struct {
	OK bool `json:"ok"`
	// Error names the first bad record (or the torn tail) when not OK.
	Error       string `json:"error,omitempty"`
	Checkpoints int    `json:"checkpoints"`
	Tenant      string `json:"tenant"`
	OwnRecords  int    `json:"own_records"`
	Records     uint64 `json:"records,omitempty"`
	LastSeq     uint64 `json:"last_seq,omitempty"`
	LastHash    string `json:"last_hash,omitempty"`
}
