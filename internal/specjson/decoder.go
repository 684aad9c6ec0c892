package specjson

import (
	"strconv"
	"unicode/utf8"

	"bulwark.dev/bulwark/internal/jsontext"
)

// maxSkipDepth bounds the nesting of a value the decoder skips (an unknown field's); deeper
// documents are left to encoding/json, whose own limit is far higher.
const maxSkipDepth = 256

// decoder reads one JSON document left to right. Every method returns false when the document
// is not one it can decode exactly as encoding/json does (invalid JSON included): the caller then
// gives up, and Decode asks encoding/json. A method that fails may leave pos anywhere.
type decoder struct {
	data []byte
	pos  int
}

// space skips JSON whitespace.
func (d *decoder) space() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// consume skips whitespace and then c, if c is next.
func (d *decoder) consume(c byte) bool {
	d.space()
	if d.pos < len(d.data) && d.data[d.pos] == c {
		d.pos++
		return true
	}
	return false
}

// literal consumes lit (null, true, false) if it is next.
func (d *decoder) literal(lit string) bool {
	d.space()
	if len(d.data)-d.pos >= len(lit) && string(d.data[d.pos:d.pos+len(lit)]) == lit {
		d.pos += len(lit)
		return true
	}
	return false
}

// null consumes a null if one is next. encoding/json decodes null into a fresh value as that
// value's zero: nil for pointers, slices, maps and interfaces, and no change for the rest.
func (d *decoder) null() bool { return d.literal("null") }

// object decodes an object whose keys are struct field names: field is called for each key, with
// the decoder before its value, and decodes the value. Keys are taken raw and must be plain
// ASCII without escapes: such a key names a field only by its exact text or by a case-folded one,
// and the generated code gives the latter to encoding/json.
func (d *decoder) object(field func(key []byte) bool) bool {
	if !d.consume('{') {
		return false
	}
	if d.consume('}') {
		return true
	}
	for {
		if !d.consume('"') {
			return false
		}
		start := d.pos
		for d.pos < len(d.data) && d.data[d.pos] != '"' {
			if c := d.data[d.pos]; c < 0x20 || c >= utf8.RuneSelf || c == '\\' {
				return false
			}
			d.pos++
		}
		if d.pos == len(d.data) {
			return false
		}
		key := d.data[start:d.pos]
		d.pos++
		if !d.consume(':') || !field(key) {
			return false
		}
		if d.consume(',') {
			continue
		}
		return d.consume('}')
	}
}

// mapObject decodes an object into a map: entry is called for each key (decoded as any string)
// with the decoder before its value.
func (d *decoder) mapObject(entry func(key string) bool) bool {
	if !d.consume('{') {
		return false
	}
	if d.consume('}') {
		return true
	}
	for {
		var key string
		if !d.str(&key) || !d.consume(':') || !entry(key) {
			return false
		}
		if d.consume(',') {
			continue
		}
		return d.consume('}')
	}
}

// array decodes an array: elem is called with the decoder before each element.
func (d *decoder) array(elem func() bool) bool {
	if !d.consume('[') {
		return false
	}
	if d.consume(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if d.consume(',') {
			continue
		}
		return d.consume(']')
	}
}

// once marks field i of an object as seen: false if it was already (encoding/json would decode
// the second value into the first one's, which the generated code does not do).
func once(seen *uint64, i uint) bool {
	if *seen&(1<<i) != 0 {
		return false
	}
	*seen |= 1 << i
	return true
}

// unknown skips the value of a key that is no field's exact name, unless the key equals one of
// folded (the fields' names, ASCII lower case) but for case: encoding/json decodes that into the
// field, which is left to it.
func (d *decoder) unknown(key []byte, folded []string) bool {
	var buf [64]byte
	lower := buf[:0]
	for _, c := range key {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower = append(lower, c)
	}
	for _, f := range folded {
		if string(lower) == f {
			return false
		}
	}
	return d.skip(0)
}

// skip consumes any one valid JSON value.
func (d *decoder) skip(depth int) bool {
	if depth > maxSkipDepth {
		return false
	}
	d.space()
	if d.pos == len(d.data) {
		return false
	}
	switch c := d.data[d.pos]; {
	case c == '{':
		return d.mapObject(func(string) bool { return d.skip(depth + 1) })
	case c == '[':
		return d.array(func() bool { return d.skip(depth + 1) })
	case c == '"':
		var s string
		return d.str(&s)
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.null()
	default:
		_, ok := d.number()
		return ok
	}
}

// str decodes a string into p (null leaves p as it is). Strings encoding/json would change —
// invalid UTF-8 or an unpaired surrogate escape, both replaced by U+FFFD — are left to it.
func (d *decoder) str(p *string) bool {
	if d.null() {
		return true
	}
	if !d.consume('"') {
		return false
	}
	start := d.pos
	ascii := true
	for d.pos < len(d.data) {
		switch c := d.data[d.pos]; {
		case c == '"':
			raw := d.data[start:d.pos]
			d.pos++
			if !ascii && !utf8.Valid(raw) {
				return false
			}
			*p = string(raw)
			return true
		case c == '\\':
			return d.escaped(p, start)
		case c < 0x20:
			return false
		case c >= utf8.RuneSelf:
			ascii = false
		}
		d.pos++
	}
	return false
}

// escaped finishes str for a string with escapes, from its first backslash at d.pos.
func (d *decoder) escaped(p *string, start int) bool {
	buf := append(make([]byte, 0, 2*(d.pos-start)+16), d.data[start:d.pos]...)
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			d.pos++
			// Escapes append whole sequences, so buf is valid exactly when its raw parts are.
			if !utf8.Valid(buf) {
				return false
			}
			*p = string(buf)
			return true
		case c < 0x20:
			return false
		case c != '\\':
			buf = append(buf, c)
			d.pos++
			continue
		}
		if d.pos+1 >= len(d.data) {
			return false
		}
		e := d.data[d.pos+1]
		d.pos += 2
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := d.hex4()
			if !ok {
				return false
			}
			if 0xD800 <= r && r < 0xDC00 {
				// A high surrogate counts only with the low one right after it.
				if d.pos+1 >= len(d.data) || d.data[d.pos] != '\\' || d.data[d.pos+1] != 'u' {
					return false
				}
				d.pos += 2
				lo, ok := d.hex4()
				if !ok || lo < 0xDC00 || lo >= 0xE000 {
					return false
				}
				r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
			} else if 0xDC00 <= r && r < 0xE000 {
				return false
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return false
		}
	}
	return false
}

// hex4 reads the four hex digits of a \u escape.
func (d *decoder) hex4() (rune, bool) {
	r, ok := jsontext.Hex4(d.data[d.pos:])
	if ok {
		d.pos += 4
	}
	return r, ok
}

// number consumes a number with JSON's grammar and returns its text.
func (d *decoder) number() ([]byte, bool) {
	d.space()
	start := d.pos
	if d.pos < len(d.data) && d.data[d.pos] == '-' {
		d.pos++
	}
	switch {
	case d.pos < len(d.data) && d.data[d.pos] == '0':
		d.pos++
	case d.digits() == 0:
		return nil, false
	}
	if d.pos < len(d.data) && d.data[d.pos] == '.' {
		d.pos++
		if d.digits() == 0 {
			return nil, false
		}
	}
	if d.pos < len(d.data) && (d.data[d.pos] == 'e' || d.data[d.pos] == 'E') {
		d.pos++
		if d.pos < len(d.data) && (d.data[d.pos] == '+' || d.data[d.pos] == '-') {
			d.pos++
		}
		if d.digits() == 0 {
			return nil, false
		}
	}
	return d.data[start:d.pos], true
}

// digits consumes decimal digits and returns how many.
func (d *decoder) digits() int {
	n := 0
	for d.pos < len(d.data) && '0' <= d.data[d.pos] && d.data[d.pos] <= '9' {
		d.pos++
		n++
	}
	return n
}

// signed decodes an integer of bits bits into p as encoding/json does (null leaves p as it is):
// a number with a fraction or an exponent, or out of range, is left to it.
func signed[T ~int | ~int8 | ~int16 | ~int32 | ~int64](d *decoder, p *T, bits int) bool {
	if d.null() {
		return true
	}
	n, ok := d.number()
	if !ok {
		return false
	}
	v, err := strconv.ParseInt(string(n), 10, bits)
	if err != nil {
		return false
	}
	*p = T(v)
	return true
}

// unsigned is signed for unsigned integers.
func unsigned[T ~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64](d *decoder, p *T, bits int) bool {
	if d.null() {
		return true
	}
	n, ok := d.number()
	if !ok {
		return false
	}
	v, err := strconv.ParseUint(string(n), 10, bits)
	if err != nil {
		return false
	}
	*p = T(v)
	return true
}

// boolean decodes true or false into p (null leaves p as it is).
func boolean[T ~bool](d *decoder, p *T) bool {
	switch {
	case d.null():
	case d.literal("true"):
		*p = true
	case d.literal("false"):
		*p = false
	default:
		return false
	}
	return true
}

// pointer decodes into *p through a new value (null leaves *p nil).
func pointer[T any](d *decoder, p **T, dec func(*T) bool) bool {
	if d.null() {
		return true
	}
	v := new(T)
	if !dec(v) {
		return false
	}
	*p = v
	return true
}

// slice decodes an array into *p, element by element into new values; [] is an empty slice,
// not nil, as encoding/json makes it.
func slice[T any](d *decoder, p *[]T, dec func(*T) bool) bool {
	if d.null() {
		return true
	}
	s := []T{}
	if !d.array(func() bool {
		var e T
		if !dec(&e) {
			return false
		}
		s = append(s, e)
		return true
	}) {
		return false
	}
	*p = s
	return true
}

// mapping decodes an object into a new map in *p, each value into a new one (a key given twice
// keeps its last value, as with encoding/json).
func mapping[T any](d *decoder, p *map[string]T, dec func(*T) bool) bool {
	if d.null() {
		return true
	}
	m := map[string]T{}
	if !d.mapObject(func(key string) bool {
		var e T
		if !dec(&e) {
			return false
		}
		m[key] = e
		return true
	}) {
		return false
	}
	*p = m
	return true
}
