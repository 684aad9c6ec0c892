package policy

import (
	"io"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/policy/document"
)

// The request document, the decision and the source and revision records are package
// document's (it evaluates nothing, so the runtime's start path links no OPA); policy evaluates
// on them and names them as its own.

// APIVersion is the version of the request document the policy receives as input.
const APIVersion = document.APIVersion

// The operations a request can ask for.
const (
	OpCreate = document.OpCreate
	OpRun    = document.OpRun
	OpExec   = document.OpExec
)

// Reason codes the engine itself produces.
const (
	CodeRequestInvalid  = document.CodeRequestInvalid
	CodePolicyError     = document.CodePolicyError
	CodePolicyUndefined = document.CodePolicyUndefined
)

// Source kinds reported by Info.
const (
	SourceEmbedded  = document.SourceEmbedded
	SourceDirectory = document.SourceDirectory
	SourceBundle    = document.SourceBundle
)

// Types of package document.
type (
	AcceptedRevision = document.AcceptedRevision
	Bandwidth        = document.Bandwidth
	Constraints      = document.Constraints
	Context          = document.Context
	Decision         = document.Decision
	DecisionRecord   = document.DecisionRecord
	DecisionRecorder = document.DecisionRecorder
	DeniedError      = document.DeniedError
	Device           = document.Device
	DeviceRule       = document.DeviceRule
	DockerVolume     = document.DockerVolume
	Egress           = document.Egress
	EgressRule       = document.EgressRule
	Hook             = document.Hook
	Identity         = document.Identity
	Image            = document.Image
	Info             = document.Info
	Join             = document.Join
	LogRecorder      = document.LogRecorder
	MAC              = document.MAC
	Mount            = document.Mount
	Namespace        = document.Namespace
	Network          = document.Network
	Operation        = document.Operation
	Pod              = document.Pod
	Process          = document.Process
	Publish          = document.Publish
	QuotaDecision    = document.QuotaDecision
	QuotaLimits      = document.QuotaLimits
	QuotaRequest     = document.QuotaRequest
	QuotaUsage       = document.QuotaUsage
	Raise            = document.Raise
	Reason           = document.Reason
	Request          = document.Request
	Resources        = document.Resources
	Rlimit           = document.Rlimit
	Rootfs           = document.Rootfs
	Seccomp          = document.Seccomp
	SourceOptions    = document.SourceOptions
	StorageDecision  = document.StorageDecision
	StorageRequest   = document.StorageRequest
	StorageVolume    = document.StorageVolume
	User             = document.User
)

// Build builds the request document (document.Build).
func Build(spec *specs.Spec, c Context) (*Request, error) { return document.Build(spec, c) }

// InputDigest is the request's digest (document.InputDigest).
func InputDigest(req *Request) string { return document.InputDigest(req) }

// IsBind reports whether a mount is a bind (document.IsBind).
func IsBind(typ string, options []string) bool { return document.IsBind(typ, options) }

// NormalizeCapability names a capability as policy sees it (document.NormalizeCapability).
func NormalizeCapability(name string) string { return document.NormalizeCapability(name) }

// ResolveHostPath resolves a host path as bind sources are (document.ResolveHostPath).
func ResolveHostPath(p string) (string, error) { return document.ResolveHostPath(p) }

// ReadAcceptedRevision reads root's accepted bundle revision (document.ReadAcceptedRevision).
func ReadAcceptedRevision(root string) (AcceptedRevision, bool, error) {
	return document.ReadAcceptedRevision(root)
}

// NewLogRecorder records decisions as log lines on w (document.NewLogRecorder).
func NewLogRecorder(w io.Writer) LogRecorder { return document.NewLogRecorder(w) }
