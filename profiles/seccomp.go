package profiles

import (
	"crypto/sha256"
	_ "embed" // the default profile is embedded so the floor cannot be lost with a missing file
	"encoding/hex"
	"encoding/json"
	"fmt"

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
	p, err := ParseDockerSeccomp(defaultSeccompJSON)
	if err != nil {
		panic(fmt.Sprintf("embedded default seccomp profile: %v", err))
	}
	return p
}

// DefaultSeccompJSON returns the embedded default profile as shipped (Docker format), for
// operators who want to read or extend it.
func DefaultSeccompJSON() []byte {
	return append([]byte(nil), defaultSeccompJSON...)
}

// SeccompDigest returns "sha256:<hex>" of the profile's canonical JSON encoding. Two profiles with
// the same digest compile to the same filter on the same libseccomp and architecture, which is
// what the compiled-program cache relies on.
func SeccompDigest(p *specs.LinuxSeccomp) (string, error) {
	// encoding/json writes struct fields in declaration order and map keys sorted, so the
	// encoding of a given value is stable.
	b, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("encode seccomp profile for digest: %w", err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}
