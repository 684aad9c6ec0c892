// Package specjson decodes an OCI runtime spec (a bundle's config.json) into specs.Spec without
// reflection: a decoder generated from the spec's types (decode_gen.go) takes the common, plain
// form of the document, and anything else goes to encoding/json itself. A fresh process spends
// about 1.2 ms building encoding/json's reflection caches for the spec's ~40 struct types; the
// generated decoder needs none.
//
// The result is always what json.Unmarshal gives: the generated decoder only accepts a document
// when it can decode it exactly as encoding/json does — exact key names, no key twice in one
// object, strings whose escapes and UTF-8 need no replacement, numbers that fit their fields —
// and gives up on anything else (a key that differs from a field's name only in case, a
// duplicate, a value of the wrong kind, invalid JSON, ...), in which case Decode returns what
// json.Unmarshal returns for the whole document, error included. The tests check both halves
// against encoding/json on generated specs, mutations of them and fuzzed input.
package specjson

import (
	"encoding/json"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Decode returns the spec data holds, as `var s specs.Spec; err := json.Unmarshal(data, &s)`
// gives it; on error the spec is nil.
func Decode(data []byte) (*specs.Spec, error) {
	if s, ok := decodeFast(data); ok {
		return s, nil
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// decodeFast is the generated decoder's answer: ok only if json.Unmarshal would give the same
// spec without error.
func decodeFast(data []byte) (*specs.Spec, bool) {
	d := &decoder{data: data}
	s := new(specs.Spec)
	if !decodeSpec(d, s) {
		return nil, false
	}
	d.space()
	if d.pos != len(d.data) {
		return nil, false
	}
	return s, true
}
