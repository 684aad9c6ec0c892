package document

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"unicode/utf8"
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
		b = appendRequest(make([]byte, 0, 16<<10), req)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

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

const hexDigits = "0123456789abcdef"

// plainASCII says which ASCII bytes encoding/json writes as they are in a string (one lookup per
// byte: most of a request document is such text).
var plainASCII = func() (t [utf8.RuneSelf]bool) {
	for c := range t {
		t[c] = c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// AppendJSONString appends s as a JSON string, escaped as encoding/json escapes it by default
// (byte for byte the same): for callers on a one-shot process's start path that render a few
// strings as JSON, where encoding/json's first use of a type costs tens of microseconds.
func AppendJSONString(b []byte, s string) []byte { return appendString(b, s) }

// appendString appends s as a JSON string escaped as encoding/json does by default: quote,
// backslash and control characters, <, > and & (HTML-safe), U+2028 and U+2029, and invalid UTF-8
// as U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if plainASCII[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
