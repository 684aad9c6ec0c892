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
func Decode(data []byte) (*specs.Spec, error) { return decode(data, decodeSpec) }

// DecodeProcess is Decode for a process alone (runc exec's --process file).
func DecodeProcess(data []byte) (*specs.Process, error) { return decode(data, decodeProcess) }

func decode[T any](data []byte, dec func(*decoder, *T) bool) (*T, error) {
	if v, ok := decodeFast(data, dec); ok {
		return v, nil
	}
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// decodeFast is the generated decoder's answer: ok only if json.Unmarshal would give the same
// value without error.
func decodeFast[T any](data []byte, dec func(*decoder, *T) bool) (*T, bool) {
	d := &decoder{data: data}
	v := new(T)
	if !dec(d, v) {
		return nil, false
	}
	d.space()
	if d.pos != len(d.data) {
		return nil, false
	}
	return v, true
}
