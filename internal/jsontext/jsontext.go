// Package jsontext holds the pieces of JSON text that Bulwark's hand-written (and generated)
// encoders and readers share — a string written exactly as encoding/json writes it, a Writer of
// a document as encoding/json writes it, the digits of a \u escape, and a Reader that decodes a
// document by hand through encoding/json's tokenizer — for code on a one-shot process's start
// path, where encoding/json's first use of a type costs tens of microseconds to milliseconds of
// reflection.
package jsontext

import "unicode/utf8"

const hexDigits = "0123456789abcdef"

// plainASCII says which ASCII bytes encoding/json writes as they are in a string (one lookup per
// byte: most JSON text is such bytes).
var plainASCII = func() (t [utf8.RuneSelf]bool) {
	for c := range t {
		t[c] = c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// AppendString appends s as a JSON string escaped as encoding/json escapes it by default, byte
// for byte: quote, backslash and control characters (\b, \f, \n, \r, \t short), <, > and & as
// \u003c, \u003e and \u0026 (HTML-safe), U+2028 and U+2029 escaped, and each invalid UTF-8 byte
// as \ufffd.
func AppendString(b []byte, s string) []byte {
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
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Hex4 reads the four hex digits of a \u escape at the start of p: the code unit, and whether p
// starts with four hex digits.
func Hex4(p []byte) (rune, bool) {
	if len(p) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range p[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
