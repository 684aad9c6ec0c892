package document

import (
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"bulwark.dev/bulwark/internal/jsontext"
)

// jsonParser reads the JSON text of a cache entry (cacheentry.go decodes it into its typed
// fields): white space, strings read exactly as encoding/json reads them, numbers as JSON writes
// them.
type jsonParser struct {
	data []byte
	i    int
}

func (p *jsonParser) fail(what string) error {
	return errors.New("decision cache: invalid JSON at offset " + strconv.Itoa(p.i) + ": " + what)
}

func (p *jsonParser) space() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// number takes a number as JSON writes it (-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?).
func (p *jsonParser) number() ([]byte, error) {
	start := p.i
	digits := func() int {
		n := 0
		for p.i < len(p.data) && '0' <= p.data[p.i] && p.data[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if p.data[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(p.data) && p.data[p.i] == '0':
		p.i++
	case digits() == 0:
		return nil, p.fail("digit expected")
	}
	if p.i < len(p.data) && p.data[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return nil, p.fail("digit expected")
		}
	}
	if p.i < len(p.data) && (p.data[p.i] == 'e' || p.data[p.i] == 'E') {
		p.i++
		if p.i < len(p.data) && (p.data[p.i] == '+' || p.data[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return nil, p.fail("digit expected")
		}
	}
	return p.data[start:p.i], nil
}

// string takes a string as encoding/json reads one: escapes resolved, a lone or broken surrogate
// and each byte of invalid UTF-8 read as U+FFFD, control characters refused.
func (p *jsonParser) string() (string, error) {
	p.i++ // "
	start := p.i
	for p.i < len(p.data) { // the common case: nothing to change
		c := p.data[p.i]
		if c == '"' {
			s := string(p.data[start:p.i])
			p.i++
			return s, nil
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
		p.i++
	}
	b := append([]byte(nil), p.data[start:p.i]...)
	for p.i < len(p.data) {
		c := p.data[p.i]
		switch {
		case c == '"':
			p.i++
			return string(b), nil
		case c < 0x20:
			return "", p.fail("control character in string")
		case c == '\\':
			r, err := p.escape()
			if err != nil {
				return "", err
			}
			b = utf8.AppendRune(b, r)
		case c < utf8.RuneSelf:
			b = append(b, c)
			p.i++
		default:
			r, size := utf8.DecodeRune(p.data[p.i:])
			p.i += size
			b = utf8.AppendRune(b, r) // RuneError for each invalid byte
		}
	}
	return "", p.fail("unterminated string")
}

// escape reads one escape sequence (a surrogate pair as one).
func (p *jsonParser) escape() (rune, error) {
	if p.i+1 >= len(p.data) {
		return 0, p.fail("unterminated escape")
	}
	c := p.data[p.i+1]
	p.i += 2
	switch c {
	case '"', '\\', '/':
		return rune(c), nil
	case 'b':
		return '\b', nil
	case 'f':
		return '\f', nil
	case 'n':
		return '\n', nil
	case 'r':
		return '\r', nil
	case 't':
		return '\t', nil
	case 'u':
		r, ok := p.hex4()
		if !ok {
			return 0, p.fail("bad \\u escape")
		}
		if !utf16.IsSurrogate(r) {
			return r, nil
		}
		// A high surrogate followed by an escaped low one is one character; anything else
		// leaves it U+FFFD (and the next escape is read on its own).
		if p.i+1 < len(p.data) && p.data[p.i] == '\\' && p.data[p.i+1] == 'u' {
			save := p.i
			p.i += 2
			if r2, ok := p.hex4(); ok {
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					return dec, nil
				}
			}
			p.i = save
		}
		return utf8.RuneError, nil
	}
	return 0, p.fail("bad escape")
}

func (p *jsonParser) hex4() (rune, bool) {
	r, ok := jsontext.Hex4(p.data[p.i:])
	if ok {
		p.i += 4
	}
	return r, ok
}
