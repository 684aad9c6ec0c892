package sandbox

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/profiles"
	"bulwark.dev/bulwark/sandbox/internal/mac"
)

// FloorResult is everything the floor will enforce on one spec, as data, so that a caller (the
// policy gate, a dry run, a scanner) never guesses or rebuilds what the sandbox does.
type FloorResult struct {
	// Spec is the effective spec: the request raised to the floor, without anything refused.
	Spec *specs.Spec `json:"effectiveSpec"`
	// Raises are the floor's changes to the request.
	Raises []Raise `json:"raises"`
	// Refusals are what the request asked and the floor never grants (a forbidden capability,
	// joining an existing namespace, a host-wide sysctl). Create refuses a spec with any.
	Refusals []Refusal `json:"refusals,omitempty"`
	// Joins are the existing namespaces the container joins (the pod model, nsjoin.go).
	Joins []Join `json:"joins,omitempty"`
	// Seccomp are the programs loaded into the container, in load order: the floor's default
	// allowlist always, then the spec's own profile stacked on top (when it differs).
	Seccomp []SeccompProgram `json:"seccomp"`
	// MAC are the MAC layers that confine the container, strongest first ("selinux",
	// "apparmor", "landlock"); empty only under the operator's AllowNoMAC exception.
	MAC []string `json:"mac"`
	// Network is what the floor does to networking: the private namespace, no TCP port rule, the
	// socket kinds the seccomp allowlist refuses.
	Network NetworkFloor `json:"network"`

	// rt and binds are the runtime and the bind sources FloorResolved floored with, joined the
	// join decision it left in binds: CreateFloored creates only from a result of its own
	// runtime's floor over resolved sources that no later floor has replaced.
	rt     *Runtime
	binds  *BindSources
	joined *joined
	// raisesRecorded says the caller recorded Raises with its decision
	// (CreateFlooredFromLayers): create records only the raises it adds.
	raisesRecorded bool
}

// Refusal is one thing the floor refuses outright, named as the request asked it.
type Refusal struct {
	// Field is the spec field: RefusedCapability, RefusedNamespace, RefusedSysctl or
	// RefusedAnnotation.
	Field string `json:"field"`
	// Name is the capability ("CAP_SYS_ADMIN"), namespace type, sysctl or annotation key.
	Name string `json:"name"`
	// Value is the namespace path, the sysctl or annotation value asked, if any.
	Value  string `json:"value,omitempty"`
	Reason string `json:"reason"`
}

// The fields a Refusal names.
const (
	RefusedCapability = "process.capabilities"
	RefusedNamespace  = "linux.namespaces"
	RefusedSysctl     = "linux.sysctl"
)

// Err is the floor's refusal as an error wrapping ErrFloor, or nil when nothing is refused.
func (r *FloorResult) Err() error {
	if len(r.Refusals) == 0 {
		return nil
	}
	msgs := make([]string, len(r.Refusals))
	for i, x := range r.Refusals {
		msgs[i] = x.Field + ": " + x.Reason
	}
	return fmt.Errorf("%w: %s", ErrFloor, strings.Join(msgs, "; "))
}

// SeccompProgram names one seccomp program the sandbox loads.
type SeccompProgram struct {
	// Source is "default" (the floor's allowlist) or "spec" (the spec's profile, stacked).
	Source string `json:"source"`
	// Digest is "sha256:" and the hex digest of the profile's JSON (SeccompDigest).
	Digest        string `json:"digest"`
	DefaultAction string `json:"defaultAction"`
	Rules         int    `json:"rules"`
}

// SeccompDigest identifies a seccomp profile: the SHA-256 of its JSON encoding, as policy's
// request document shows it.
func SeccompDigest(p *specs.LinuxSeccomp) string {
	b, _ := json.Marshal(p) // a spec struct always marshals
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// defaultProgram describes the floor's default allowlist, once per process: from
// defaultPrograms when the embedded profile is the one they were computed from
// (profiles.DefaultSeccompSum, a constant generated with the profile's Go form), otherwise from
// the profile itself.
var defaultProgram = sync.OnceValue(func() SeccompProgram {
	return describeDefault(profiles.DefaultSeccompSum())
})

// defaultPrograms describe the default allowlist resolved for each architecture, computed (by
// TestDefaultSeccompDescriptions, which fails until they are updated) from the embedded profile
// whose SHA-256 is defaultProfileSum. They are the floor's description of every start's seccomp
// program, needed before its policy decision: resolving the profile (≈ 55 µs) and digesting it
// (its JSON encoding, the first in a process: ≈ 0.35 ms) are not on that path; Create resolves it
// anyway to compile it, later and beside other work.
const defaultProfileSum = "652db8ca5290aeda7fd4147e18ded00a35cf0233898f3a0c42219eae739b506d"

var defaultPrograms = map[string]SeccompProgram{
	"amd64": {Source: "default", Digest: "sha256:e4735151c4dfb0845e4aedab4c6661ec2013a1bd822fa362d32646b44c933eb2", DefaultAction: "SCMP_ACT_ERRNO", Rules: 30},
	"arm64": {Source: "default", Digest: "sha256:71f0f9a37f7cb4f8a91d41c1de16553ca53bc55be8eeb8873df9120446bc5a70", DefaultAction: "SCMP_ACT_ERRNO", Rules: 30},
}

// describeDefault describes the default allowlist, from defaultPrograms when sum, the embedded
// profile's, is the one they were computed from; otherwise (any other profile or architecture)
// from the profile, resolved and digested here.
func describeDefault(sum string) SeccompProgram {
	if p, ok := defaultPrograms[runtime.GOARCH]; ok && sum == defaultProfileSum {
		return p
	}
	def := profiles.DefaultSeccomp()
	return SeccompProgram{Source: "default", Digest: SeccompDigest(def), DefaultAction: string(def.DefaultAction), Rules: len(def.Syscalls)}
}

// seccompStack is what compileSeccomp compiles for spec, described.
func seccompStack(spec *specs.LinuxSeccomp) []SeccompProgram {
	out := []SeccompProgram{defaultProgram()}
	if spec == nil {
		return out
	}
	if d := SeccompDigest(spec); d != out[0].Digest {
		out = append(out, SeccompProgram{Source: "spec", Digest: d, DefaultAction: string(spec.DefaultAction), Rules: len(spec.Syscalls)})
	}
	return out
}

// macLayers names the layers l enforces, strongest first.
func macLayers(l mac.Layers) []string {
	var s []string
	if l.SELinux {
		s = append(s, "selinux")
	}
	if l.AppArmor {
		s = append(s, "apparmor")
	}
	if l.Landlock() {
		s = append(s, "landlock")
	}
	return s
}
