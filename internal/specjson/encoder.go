package specjson

import (
	"encoding/json"
	"slices"
	"strconv"

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
	e := &encoder{b: make([]byte, 0, 4096)}
	appendSpec(e, s)
	if e.err != nil {
		return nil, e.err
	}
	return e.b, nil
}

// encoder appends JSON to b; err is the first error of a value left to encoding/json.
type encoder struct {
	b   []byte
	err error
}

// key appends a field's key (with its colon), after a comma unless it is the first field of the
// object that began at n.
func (e *encoder) key(n int, key string) {
	if len(e.b) > n {
		e.b = append(e.b, ',')
	}
	e.b = append(e.b, key...)
}

func (e *encoder) null() { e.b = append(e.b, "null"...) }

func (e *encoder) boolean(v bool) { e.b = strconv.AppendBool(e.b, v) }

func (e *encoder) int(v int64) { e.b = strconv.AppendInt(e.b, v, 10) }

func (e *encoder) uint(v uint64) { e.b = strconv.AppendUint(e.b, v, 10) }

// any appends an interface value: nil as null, anything else as json.Marshal writes it.
func (e *encoder) any(v any) {
	if v == nil {
		e.null()
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		if e.err == nil {
			e.err = err
		}
		return
	}
	e.b = append(e.b, b...)
}

// str appends s quoted as encoding/json quotes it (jsontext.AppendString).
func (e *encoder) str(s string) { e.b = jsontext.AppendString(e.b, s) }

// sortedKeys is m's keys in the order encoding/json writes them.
func sortedKeys[T any](m map[string]T) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
