package specjson

import (
	"encoding/json"
	"slices"

	"bulwark.dev/bulwark/internal/jsontext"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Encode returns json.Marshal(s): the same bytes, from an encoder generated from the spec's
// types (encode_gen.go) instead of encoding/json's reflection, whose caches cost a fresh process
// 1.2-4 ms for the spec's types. Only a non-nil interface value (Windows' credentialSpec) goes
// to encoding/json.
func Encode(s *specs.Spec) ([]byte, error) {
	if s == nil {
		return []byte("null"), nil
	}
	e := &encoder{jsontext.Writer{B: make([]byte, 0, 4096)}}
	appendSpec(e, s)
	return e.Bytes()
}

// encoder is the writer the generated code appends to (jsontext.Writer), with what the spec's
// types need besides.
type encoder struct {
	jsontext.Writer
}

// any appends an interface value: nil as null, anything else as json.Marshal writes it.
func (e *encoder) any(v any) {
	if v == nil {
		e.Null()
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		e.Fail(err)
		return
	}
	e.Raw(b)
}

// sortedKeys is m's keys in the order encoding/json writes them.
func sortedKeys[T any](m map[string]T) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
