package jsontext

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"
)

// Writer appends JSON text as encoding/json's Marshal writes it, one member or value at a time:
// the primitives the encoders written by hand (or generated) share — the spec's
// (internal/specjson), a plan's and a container record's (engine), a sandbox's state, an audit
// record — each for a document written on a run's path, where encoding/json's first Marshal of a
// type in a process builds its encoders by reflection. An encoder writes its type's fields in
// their order with the omissions its tags ask for; its test compares it with encoding/json, byte
// for byte.
type Writer struct {
	// B is the text written so far.
	B []byte
	// Err is the first value that could not be written (Fail), as encoding/json's error: B is
	// then not a document.
	Err error
}

// Object begins an object and returns its mark, for Key.
func (w *Writer) Object() int {
	w.B = append(w.B, '{')
	return len(w.B)
}

// EndObject ends an object.
func (w *Writer) EndObject() { w.B = append(w.B, '}') }

// Key begins the member name of the object whose mark is n: after a comma unless it is the
// object's first. name is written as it is: a field's name, which needs no escaping.
func (w *Writer) Key(n int, name string) {
	b := w.B
	if len(b) > n {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	w.B = append(b, '"', ':')
}

// MapKey begins the member of a map's object (whose mark is n) named k, quoted as encoding/json
// quotes a map's key: after a comma unless it is the object's first.
func (w *Writer) MapKey(n int, k string) {
	if len(w.B) > n {
		w.B = append(w.B, ',')
	}
	w.B = AppendString(w.B, k)
	w.B = append(w.B, ':')
}

// Array begins an array and returns its mark, for Elem.
func (w *Writer) Array() int {
	w.B = append(w.B, '[')
	return len(w.B)
}

// EndArray ends an array.
func (w *Writer) EndArray() { w.B = append(w.B, ']') }

// Elem begins an element of the array whose mark is n: after a comma unless it is the first.
func (w *Writer) Elem(n int) {
	if len(w.B) > n {
		w.B = append(w.B, ',')
	}
}

// Null writes null: a nil pointer, slice or map.
func (w *Writer) Null() { w.B = append(w.B, "null"...) }

// String writes s as encoding/json quotes it (AppendString).
func (w *Writer) String(s string) { w.B = AppendString(w.B, s) }

// Bool writes v.
func (w *Writer) Bool(v bool) { w.B = strconv.AppendBool(w.B, v) }

// Int writes v.
func (w *Writer) Int(v int64) { w.B = strconv.AppendInt(w.B, v, 10) }

// Uint writes v.
func (w *Writer) Uint(v uint64) { w.B = strconv.AppendUint(w.B, v, 10) }

// Float writes f as encoding/json writes a float64: the shortest decimal that reads back as f,
// in exponent form below 1e-6 and from 1e21 on (its exponent without a leading zero); NaN and
// the infinities fail the writer, as they fail encoding/json.
func (w *Writer) Float(f float64) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		w.Fail(fmt.Errorf("json: unsupported value: %s", strconv.FormatFloat(f, 'g', -1, 64)))
		return
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	w.B = strconv.AppendFloat(w.B, f, format, -1, 64)
	if format == 'e' {
		// e-09 becomes e-9, as encoding/json writes it.
		if n := len(w.B); n >= 4 && w.B[n-4] == 'e' && w.B[n-3] == '-' && w.B[n-2] == '0' {
			w.B[n-2] = w.B[n-1]
			w.B = w.B[:n-1]
		}
	}
}

// Time writes t as its MarshalJSON does; a time it cannot write (a year past 9999) fails the
// writer, as it fails encoding/json.
func (w *Writer) Time(t time.Time) {
	b, err := t.MarshalJSON()
	if err != nil {
		w.Fail(err)
		return
	}
	w.B = append(w.B, b...)
}

// Strings writes a []string: null when it is nil.
func (w *Writer) Strings(v []string) {
	if v == nil {
		w.Null()
		return
	}
	n := w.Array()
	for _, s := range v {
		w.Elem(n)
		w.String(s)
	}
	w.EndArray()
}

// StringMap writes a map[string]string, its keys sorted: null when it is nil.
func (w *Writer) StringMap(m map[string]string) {
	if m == nil {
		w.Null()
		return
	}
	n := w.Object()
	for _, k := range slices.Sorted(maps.Keys(m)) {
		w.MapKey(n, k)
		w.String(m[k])
	}
	w.EndObject()
}

// Raw writes b, a value already encoded.
func (w *Writer) Raw(b []byte) { w.B = append(w.B, b...) }

// Fail records err, unless an earlier failure is recorded.
func (w *Writer) Fail(err error) {
	if w.Err == nil {
		w.Err = err
	}
}

// Bytes is the document written, or the writer's failure.
func (w *Writer) Bytes() ([]byte, error) {
	if w.Err != nil {
		return nil, w.Err
	}
	return w.B, nil
}
