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
	p, err := parsedDefault()
	if err != nil {
		panic(fmt.Sprintf("embedded default seccomp profile: %v", err))
	}
	return cloneSeccomp(p)
}

// parsedDefault parses the embedded profile once; every start needs it and parsing costs ≈0.4 ms.
var parsedDefault = sync.OnceValues(func() (*specs.LinuxSeccomp, error) {
	return ParseDockerSeccomp(defaultSeccompJSON)
})

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
