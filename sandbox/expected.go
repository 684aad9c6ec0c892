package sandbox

import (
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/sandbox/internal/caps"
)

// Expected is what the floor gives every container whatever its spec says: the values a scanner
// compares a running container against, instead of copying them. Every call returns fresh
// copies, so nothing a caller does changes the floor.
type Expected struct {
	// Namespaces are created fresh for every container.
	Namespaces []string `json:"namespaces"`
	// MaskedPaths and ReadonlyPaths are always masked and read-only (a spec may add more).
	MaskedPaths   []string `json:"maskedPaths"`
	ReadonlyPaths []string `json:"readonlyPaths"`
	// DefaultMounts are mounted where the spec has no mount at their destination.
	DefaultMounts []specs.Mount `json:"defaultMounts"`
	// Rlimits are the defaults of a spec that sets none; Max holds each one's ceiling.
	Rlimits    []specs.POSIXRlimit `json:"rlimits"`
	RlimitsMax map[string]uint64   `json:"rlimitsMax"`
	// SeccompDigest is the digest (SeccompDigest) of the default allowlist, always loaded first.
	SeccompDigest string `json:"seccompDigest"`
	// Grantable capabilities are kept when asked; Forbidden ones are refused.
	Grantable []string `json:"grantableCapabilities"`
	Forbidden []string `json:"forbiddenCapabilities"`
}

// FloorExpected returns the floor's expected values.
func FloorExpected() Expected {
	ns := make([]string, len(requiredNamespaces))
	for i, t := range requiredNamespaces {
		ns[i] = string(t)
	}
	mounts := make([]specs.Mount, len(defaultMounts))
	for i, m := range defaultMounts {
		m.Options = slices.Clone(m.Options)
		mounts[i] = m
	}
	var rl []specs.POSIXRlimit
	max := map[string]uint64{}
	for _, l := range floorRlimits {
		rl = append(rl, specs.POSIXRlimit{Type: l.typ, Soft: l.soft, Hard: l.hard})
		max[l.typ] = l.max
	}
	return Expected{
		Rlimits:       rl,
		RlimitsMax:    max,
		Namespaces:    ns,
		MaskedPaths:   slices.Clone(defaultMaskedPaths),
		ReadonlyPaths: slices.Clone(defaultReadonlyPaths),
		DefaultMounts: mounts,
		SeccompDigest: defaultProgram().Digest,
		Grantable:     caps.Grantable.Names(),
		Forbidden:     caps.Forbidden.Names(),
	}
}
