package profiles

import (
	"crypto/sha256"
	_ "embed" // the default profile is embedded so the floor cannot be lost with a missing file
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// defaultSeccompJSON is Bulwark's seccomp floor in Docker's profile format. Every container loads
// it; a spec or operator profile is stacked on top and can only take more away.
//
//go:embed seccomp/default.json
var defaultSeccompJSON []byte

// DefaultSeccomp returns a fresh copy of the embedded default allowlist, resolved for this
// machine's architecture and kernel with no capabilities (the floor never depends on granted caps).
// It panics if the embedded file does not parse: that is a build defect caught by the tests, and
// starting without the floor is never an option.
func DefaultSeccomp() *specs.LinuxSeccomp {
	return cloneSeccomp(parsedDefault().spec)
}

// DefaultSeccompShape returns what describes the default allowlist DefaultSeccomp returns — its
// default action and its number of rules — without copying it.
func DefaultSeccompShape() (action specs.LinuxSeccompAction, rules int) {
	p := parsedDefault().spec
	return p.DefaultAction, len(p.Syscalls)
}

// DefaultSeccompSum is the SHA-256 (hex) of the embedded profile that the profile DefaultSeccomp
// resolves (its Go form, defaultDocker) was generated from: a constant written with that Go form
// (TestDefaultProfileGenerated fails when either differs from the embedded file), so a
// description kept for that profile (the floor's, on every start's path) is checked against it
// without hashing the file on every start (≈ 20 µs).
func DefaultSeccompSum() string { return defaultSeccompSum }

// SeccompRuleNote is a rule of the default profile as shipped, with its comment.
type SeccompRuleNote struct {
	Names    []string
	Action   specs.LinuxSeccompAction
	ErrnoRet *uint // as the rule writes it: nil when it gives none, or only an errno name
	Comment  string
}

// DefaultSeccompNotes returns every rule of the embedded default profile as shipped (whatever
// architecture it applies to), with its comment, from the one parse DefaultSeccomp uses. It
// panics where DefaultSeccomp does.
func DefaultSeccompNotes() []SeccompRuleNote {
	rules := parsedDefault().rules
	out := make([]SeccompRuleNote, len(rules))
	for i, r := range rules {
		out[i] = SeccompRuleNote{Names: slices.Clone(r.Names), Action: r.Action, ErrnoRet: cloneUint(r.ErrnoRet), Comment: r.Comment}
	}
	return out
}

// parsedDefault resolves the embedded profile once per process: every start needs it (the floor's
// description for policy, its network notes, the compiled program's cache key). It is read from
// its Go form (defaultDocker, generated from and checked against seccomp/default.json): decoding
// the JSON, the first decoding in a process, cost ≈ 1 ms of every start.
var parsedDefault = sync.OnceValue(func() defaultProfile {
	dp := defaultDocker() // seccomp/default.json, decoded at build time (TestDefaultProfileGenerated)
	spec, err := resolveDocker(dp, ParseOptions{})
	if err != nil {
		panic(fmt.Sprintf("embedded default seccomp profile: %v", err))
	}
	return defaultProfile{spec: spec, rules: dp.Syscalls}
})

// defaultProfile is the embedded profile resolved (spec) and as shipped (rules).
type defaultProfile struct {
	spec  *specs.LinuxSeccomp
	rules []dockerSyscall
}

// cloneSeccomp deep-copies a profile so callers may change theirs freely.
func cloneSeccomp(p *specs.LinuxSeccomp) *specs.LinuxSeccomp {
	out := *p
	out.DefaultErrnoRet = cloneUint(p.DefaultErrnoRet)
	out.Architectures = slices.Clone(p.Architectures)
	out.Flags = slices.Clone(p.Flags)
	out.Syscalls = make([]specs.LinuxSyscall, len(p.Syscalls))
	for i, sc := range p.Syscalls {
		out.Syscalls[i] = specs.LinuxSyscall{
			Names:    slices.Clone(sc.Names),
			Action:   sc.Action,
			ErrnoRet: cloneUint(sc.ErrnoRet),
			Args:     slices.Clone(sc.Args),
		}
	}
	return &out
}

// uintPtr is a pointer to a copy of v.
func uintPtr(v uint) *uint { return &v }

func cloneUint(u *uint) *uint {
	if u == nil {
		return nil
	}
	v := *u
	return &v
}

// DefaultSeccompJSON returns the embedded default profile as shipped (Docker format), for
// operators who want to read or extend it.
func DefaultSeccompJSON() []byte {
	return append([]byte(nil), defaultSeccompJSON...)
}

// SeccompDigest returns "sha256:<hex>" of a canonical encoding of the profile. Two profiles with
// the same digest compile to the same filter on the same libseccomp and architecture, which is
// what the compiled-program cache relies on. The encoding is written field by field (≈10x faster
// than hashing encoding/json output, and the cache lookup pays it on every start); a test fails
// when runtime-spec adds a field this function does not cover.
func SeccompDigest(p *specs.LinuxSeccomp) (string, error) {
	if p == nil {
		return "", fmt.Errorf("seccomp digest: nil profile")
	}
	var d digester
	d.str("bulwark-seccomp-digest-v1")
	d.str(string(p.DefaultAction))
	d.optUint(p.DefaultErrnoRet)
	d.num(uint64(len(p.Architectures)))
	for _, a := range p.Architectures {
		d.str(string(a))
	}
	d.num(uint64(len(p.Flags)))
	for _, f := range p.Flags {
		d.str(string(f))
	}
	d.str(p.ListenerPath)
	d.str(p.ListenerMetadata)
	d.num(uint64(len(p.Syscalls)))
	for _, sc := range p.Syscalls {
		d.num(uint64(len(sc.Names)))
		for _, n := range sc.Names {
			d.str(n)
		}
		d.str(string(sc.Action))
		d.optUint(sc.ErrnoRet)
		d.num(uint64(len(sc.Args)))
		for _, a := range sc.Args {
			d.num(uint64(a.Index))
			d.num(a.Value)
			d.num(a.ValueTwo)
			d.str(string(a.Op))
		}
	}
	sum := sha256.Sum256(d.buf)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// digester writes length-prefixed fields, so no two different profiles share an encoding.
type digester struct{ buf []byte }

func (d *digester) num(v uint64) { d.buf = binary.AppendUvarint(d.buf, v) }

func (d *digester) str(s string) {
	d.num(uint64(len(s)))
	d.buf = append(d.buf, s...)
}

func (d *digester) optUint(u *uint) {
	if u == nil {
		d.num(0)
		return
	}
	d.num(1)
	d.num(uint64(*u))
}
