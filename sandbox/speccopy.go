package sandbox

import (
	"fmt"
	"strings"
	"unicode/utf8"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// copySpec returns a deep copy of s, the same spec a JSON round trip (json.Marshal, then
// json.Unmarshal into a new Spec) gives, which is what it replaced: that round trip cost
// ≈ 0.1 ms of every floor (the policy gate's dry run and Create's). As the round trip did, the
// copy leaves an empty slice or map of an omitempty field nil, drops fields JSON does not see,
// replaces each byte of a string that is not valid UTF-8 with U+FFFD, and decodes the one
// free-form field (Windows.CredentialSpec) from its JSON (TestCopySpecIsJSONRoundTrip compares
// both on every field of the spec). Its code is generated from the spec's types
// (speccopy_gen.go, TestSpecCopyGenerated): a walk of them by reflection, which it replaced, cost
// ≈ 45 µs of the first floor in a process, on the policy step's path.
func copySpec(s *specs.Spec) (*specs.Spec, error) {
	out := &specs.Spec{}
	if err := copySpecInto(out, s); err != nil {
		return nil, fmt.Errorf("copy spec: %w", err)
	}
	return out, nil
}

// jsonString is s as encoding/json writes it: each byte that is not part of a valid UTF-8
// sequence replaced with U+FFFD.
func jsonString(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}
