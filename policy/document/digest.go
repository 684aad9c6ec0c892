package document

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"

	"bulwark.dev/bulwark/internal/jsontext"
)

// InputDigest is the sha256 of the request's JSON encoding (deterministic: struct order,
// sorted map keys), the identity of the request in audit records and the decision cache's key.
//
// The encoding is encoding/json's, byte for byte (TestInputDigestIsJSON), written by
// appendRequest, generated from the document's types (digest_gen.go): encoding/json's first
// Marshal of a type in a process builds its encoders by reflection (≈ 0.3–0.5 ms for the
// document's two dozen types), paid by every one-shot runtime process on its start path.
func InputDigest(req *Request) string {
	b := []byte("null")
	if req != nil {
		b = appendRequest(make([]byte, 0, digestBuffer), req)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// digestBuffer is the encoding's first buffer: enough for most requests (runc's default spec
// encodes to ≈ 4 KB). It is a variable so that the buffer is on the heap, where only the pages
// written are touched: a constant made it a 16 KB array on the stack, zeroed in full and growing
// the goroutine's stack on first use (≈ 25 µs of every bulwark-runc start, in page faults).
var digestBuffer = 8 << 10

// comma appends the separator before a struct's field unless it is the first written since n.
func comma(b []byte, n int) []byte {
	if len(b) > n {
		return append(b, ',')
	}
	return b
}

// sortedKeys are m's keys in the order encoding/json writes them.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// AppendJSONString appends s as a JSON string, escaped as encoding/json escapes it by default
// (byte for byte the same): for callers on a one-shot process's start path that render a few
// strings as JSON, where encoding/json's first use of a type costs tens of microseconds.
func AppendJSONString(b []byte, s string) []byte { return jsontext.AppendString(b, s) }

// appendString is the generated encoder's name for jsontext.AppendString.
func appendString(b []byte, s string) []byte { return jsontext.AppendString(b, s) }
