package jsontext

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Reader decodes a document by hand, value by value, through encoding/json's own tokenizer
// (json.Decoder.Token: its scanner, its string unquoting), without reflection: a fresh process's
// first json.Unmarshal of a type builds encoding/json's decoders for it and every type below it,
// 0.05-0.15 ms for an OCI image configuration, where reading the same document by tokens costs
// about a tenth of that.
//
// A Reader only says what a document holds when it is sure json.Unmarshal would decode it to
// exactly the same value without error. Every method returns false on anything else — a key
// that matches a field only but for case, a key twice in one object, a value of another kind, a
// number that does not fit, invalid JSON, text after the document — and the caller then decodes
// the document with json.Unmarshal, which gives the value or the error it always gave.
type Reader struct {
	data []byte
	d    *json.Decoder
}

// NewReader reads data.
func NewReader(data []byte) *Reader {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	return &Reader{data: data, d: d}
}

// start is where the next value begins: encoding/json's decoder consumes the separators before
// a value (the colon after a key, the comma after an element) when it reads the value.
func (r *Reader) start() int {
	i := int(r.d.InputOffset())
	for i < len(r.data) {
		switch r.data[i] {
		case ' ', '\t', '\n', '\r', ':', ',':
			i++
		default:
			return i
		}
	}
	return i
}

// next is the first byte of the next value (0 at the end).
func (r *Reader) next() byte {
	if i := r.start(); i < len(r.data) {
		return r.data[i]
	}
	return 0
}

// delim consumes the delimiter c.
func (r *Reader) delim(c json.Delim) bool {
	t, err := r.d.Token()
	return err == nil && t == c
}

// Null consumes a null if the next value is one.
func (r *Reader) Null() bool {
	if r.next() != 'n' {
		return false
	}
	t, err := r.d.Token()
	return err == nil && t == nil
}

// End reports whether the document ends after the value read (white space aside).
func (r *Reader) End() bool {
	for _, c := range r.data[r.d.InputOffset():] {
		switch c {
		case ' ', '\t', '\n', '\r':
		default:
			return false
		}
	}
	return true
}

// Object reads an object whose fields are keys: field reads the value of each key of keys found
// (once); a value of any other key is skipped, as encoding/json ignores it, unless the key
// matches one of keys but for case (encoding/json would decode it into that field). A null
// object is no object: ok, and field is never called.
func (r *Reader) Object(keys []string, field func(key string) bool) bool {
	if r.Null() {
		return true
	}
	if !r.delim('{') {
		return false
	}
	var seen []string
	for r.d.More() {
		t, err := r.d.Token()
		key, isString := t.(string)
		if err != nil || !isString {
			return false
		}
		for _, s := range seen {
			if s == key {
				return false
			}
		}
		seen = append(seen, key)
		known := false
		for _, k := range keys {
			if k == key {
				known = true
				break
			}
			if strings.EqualFold(k, key) {
				return false
			}
		}
		if known && !field(key) || !known && !r.Skip() {
			return false
		}
	}
	return r.delim('}')
}

// Skip reads any value.
func (r *Reader) Skip() bool {
	t, err := r.d.Token()
	if err != nil {
		return false
	}
	switch t {
	case json.Delim('{'):
		for r.d.More() {
			if k, err := r.d.Token(); err != nil {
				return false
			} else if _, ok := k.(string); !ok {
				return false
			}
			if !r.Skip() {
				return false
			}
		}
		return r.delim('}')
	case json.Delim('['):
		for r.d.More() {
			if !r.Skip() {
				return false
			}
		}
		return r.delim(']')
	}
	return true
}

// String reads a string into p (a null leaves p as it is).
func (r *Reader) String(p *string) bool {
	if r.Null() {
		return true
	}
	t, err := r.d.Token()
	s, ok := t.(string)
	if err != nil || !ok {
		return false
	}
	*p = s
	return true
}

// Bool reads a boolean into p (a null leaves p as it is).
func (r *Reader) Bool(p *bool) bool {
	if r.Null() {
		return true
	}
	t, err := r.d.Token()
	b, ok := t.(bool)
	if err != nil || !ok {
		return false
	}
	*p = b
	return true
}

// Int reads an integer that fits bits bits into p (a null leaves p as it is), as encoding/json
// reads one into a signed integer field: the literal's digits, no fraction or exponent.
func (r *Reader) Int(p *int64, bits int) bool {
	return readNumber(r, p, func(n string) (int64, error) { return strconv.ParseInt(n, 10, bits) })
}

// Uint reads an unsigned integer that fits bits bits into p (a null leaves p as it is), as
// encoding/json reads one into an unsigned integer field: the literal's digits, no sign, fraction
// or exponent.
func (r *Reader) Uint(p *uint64, bits int) bool {
	return readNumber(r, p, func(n string) (uint64, error) { return strconv.ParseUint(n, 10, bits) })
}

// readNumber reads a number literal into p through parse (a null leaves p as it is).
func readNumber[T any](r *Reader, p *T, parse func(string) (T, error)) bool {
	if r.Null() {
		return true
	}
	t, err := r.d.Token()
	n, ok := t.(json.Number)
	if err != nil || !ok {
		return false
	}
	v, err := parse(string(n))
	if err != nil {
		return false
	}
	*p = v
	return true
}

// Array reads an array, element by element; a null is a nil slice (reset is called either way:
// encoding/json replaces a slice's elements, an empty array making an empty slice).
func (r *Reader) Array(reset func(null bool), elem func() bool) bool {
	if r.Null() {
		reset(true)
		return true
	}
	if !r.delim('[') {
		return false
	}
	reset(false)
	for r.d.More() {
		if r.next() == 'n' || !elem() {
			return false // a null element: left to encoding/json
		}
	}
	return r.delim(']')
}

// Strings reads an array of strings into p.
func (r *Reader) Strings(p *[]string) bool {
	return r.Array(func(null bool) {
		if null {
			*p = nil
		} else {
			*p = []string{}
		}
	}, func() bool {
		var s string
		if !r.String(&s) {
			return false
		}
		*p = append(*p, s)
		return true
	})
}

// Map reads an object of any keys into a fresh map p (a null is a nil map): value reads the
// value of each key, which appears only once.
func (r *Reader) Map(reset func(null bool), value func(key string) bool) bool {
	if r.Null() {
		reset(true)
		return true
	}
	if !r.delim('{') {
		return false
	}
	reset(false)
	seen := map[string]bool{}
	for r.d.More() {
		t, err := r.d.Token()
		key, ok := t.(string)
		if err != nil || !ok || seen[key] || r.next() == 'n' {
			return false // a null value: left to encoding/json
		}
		seen[key] = true
		if !value(key) {
			return false
		}
	}
	return r.delim('}')
}

// StringMap reads an object of strings into p.
func (r *Reader) StringMap(p *map[string]string) bool {
	return r.Map(func(null bool) {
		if null {
			*p = nil
		} else {
			*p = map[string]string{}
		}
	}, func(key string) bool {
		var s string
		if !r.String(&s) {
			return false
		}
		(*p)[key] = s
		return true
	})
}

// Set reads an object of empty objects (a map[string]struct{}) into p.
func (r *Reader) Set(p *map[string]struct{}) bool {
	return r.Map(func(null bool) {
		if null {
			*p = nil
		} else {
			*p = map[string]struct{}{}
		}
	}, func(key string) bool {
		if !r.delim('{') || r.d.More() || !r.delim('}') {
			return false // an object with fields: encoding/json ignores them; left to it
		}
		(*p)[key] = struct{}{}
		return true
	})
}

// Time reads a time into p as encoding/json does, with time.Time's UnmarshalJSON on the literal
// as written (a null leaves p as it is).
func (r *Reader) Time(p *time.Time) bool {
	if r.Null() {
		return true
	}
	from := r.start()
	t, err := r.d.Token()
	if _, ok := t.(string); err != nil || !ok {
		return false
	}
	return p.UnmarshalJSON(r.data[from:r.d.InputOffset()]) == nil
}

// TimePointer reads a time into a fresh *p (a null is a nil pointer).
func (r *Reader) TimePointer(p **time.Time) bool {
	if r.Null() {
		*p = nil
		return true
	}
	t := new(time.Time)
	if !r.Time(t) {
		return false
	}
	*p = t
	return true
}

// Decode decodes data into v with read when read takes the whole document, else with
// json.Unmarshal (see Reader).
func Decode[T any](data []byte, v *T, read func(*Reader, *T) bool) error {
	r := NewReader(data)
	var fast T
	if read(r, &fast) && r.End() {
		*v = fast
		return nil
	}
	return json.Unmarshal(data, v)
}
