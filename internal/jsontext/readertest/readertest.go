// Package readertest checks hand-written jsontext.Reader decoders against encoding/json, for the
// tests of the packages that have them: a reader must know every field of its type, and take
// only what json.Unmarshal decodes without error, to the same value.
package readertest

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"bulwark.dev/bulwark/internal/jsontext"
)

// Read is a reader of a document as a fresh value: what it read, and whether it took the
// whole document.
type Read func(data []byte) (any, bool)

// Of makes a Read of a reader of T.
func Of[T any](read func(*jsontext.Reader, *T) bool) Read {
	return func(data []byte) (any, bool) {
		r := jsontext.NewReader(data)
		v := new(T)
		return v, read(r, v) && r.End()
	}
}

// Keys fails t unless keys are exactly typ's fields as encoding/json names them (an embedded
// struct's promoted): a field added to typ fails here rather than being skipped by its reader.
func Keys(t *testing.T, typ reflect.Type, keys []string) {
	t.Helper()
	got := slices.Sorted(slices.Values(keys))
	if want := slices.Sorted(slices.Values(jsonNames(typ))); !slices.Equal(got, want) {
		t.Errorf("%s: reader keys %q, encoding/json's %q", typ, got, want)
	}
}

func jsonNames(typ reflect.Type) []string {
	var out []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			out = append(out, jsonNames(f.Type)...)
			continue
		}
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	return out
}

// NoSelfDecoders fails t if a type below roots decodes itself (an UnmarshalJSON or UnmarshalText
// json.Unmarshal would call), but time.Time, which the Reader calls as encoding/json does.
func NoSelfDecoders(t *testing.T, roots ...reflect.Type) {
	t.Helper()
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		if seen[typ] || typ == reflect.TypeFor[time.Time]() {
			return
		}
		seen[typ] = true
		p := reflect.PointerTo(typ)
		if p.Implements(reflect.TypeFor[json.Unmarshaler]()) || p.Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) {
			t.Errorf("%s decodes itself: teach its reader", typ)
		}
		switch typ.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Map:
			walk(typ.Elem())
		case reflect.Struct:
			for i := range typ.NumField() {
				walk(typ.Field(i).Type)
			}
		}
	}
	for _, r := range roots {
		walk(r)
	}
}

// Check fails t if read takes data to other than the value json.Unmarshal gives a fresh value of
// like's type, or takes what json.Unmarshal refuses; it reports whether read took data.
func Check(t *testing.T, data []byte, like any, read Read) bool {
	t.Helper()
	got, ok := read(data)
	if !ok {
		return false
	}
	want := reflect.New(reflect.TypeOf(like).Elem()).Interface()
	if err := json.Unmarshal(data, want); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("reader took %s\nas   %+v\njson %+v (%v)", data, got, want, err)
	}
	return true
}

// Documents checks read against encoding/json on documents of v's type (a pointer) with every
// field filled at random, as encoding/json writes them (compact and indented): it must take them
// all; and on mutations of each of them (keys of keys differing but for case or added, maybe
// twice, values of other kinds, escapes, bytes inserted, removed or changed). It returns how
// many mutations read took.
func Documents(t *testing.T, rnd *rand.Rand, v any, read Read, keys []string, docs, mutations int) int {
	t.Helper()
	taken := 0
	for i := range docs {
		Fill(rnd, reflect.ValueOf(v).Elem(), 0)
		data, err := json.Marshal(v)
		if i%2 == 1 {
			data, err = json.MarshalIndent(v, "", "  ")
		}
		if err != nil {
			t.Fatal(err)
		}
		if !Check(t, data, v, read) {
			t.Fatalf("%T not taken:\n%s", v, data)
		}
		for range mutations {
			if Check(t, Mutate(rnd, data, keys), v, read) {
				taken++
			}
		}
	}
	return taken
}

var mutationValues = []string{`null`, `1`, `-1`, `1.5`, `1e3`, `""`, `"s"`, `"2026-01-01T00:00:00Z"`, `"\u0041"`, `[]`, `["a"]`, `[null]`, `{}`, `{"a":{}}`, `{"a":"b"}`, `true`}

// Mutate changes data once: a key of keys in another case, a key of keys added at an object's
// start (maybe one it has), a value replaced, a letter escaped, or a byte inserted, removed or
// replaced (invalid UTF-8 among them).
func Mutate(rnd *rand.Rand, data []byte, keys []string) []byte {
	keys = append(slices.Clip(keys), "unknown")
	out := bytes.Clone(data)
	switch rnd.IntN(6) {
	case 0:
		k := keys[rnd.IntN(len(keys))]
		return bytes.Replace(out, []byte(`"`+k+`"`), []byte(`"`+strings.ToUpper(k[:1])+k[1:]+`"`), 1)
	case 1:
		if i := randomIndex(rnd, out, '{'); i >= 0 {
			kv := fmt.Sprintf(`"%s":%s`, keys[rnd.IntN(len(keys))], mutationValues[rnd.IntN(len(mutationValues))])
			if out[i+1] != '}' {
				kv += ","
			}
			return slices.Insert(out, i+1, []byte(kv)...)
		}
	case 2:
		if i := randomIndex(rnd, out, ':'); i >= 0 {
			end := i + 1
			for end < len(out) && !strings.ContainsRune(",}]", rune(out[end])) {
				end++
			}
			return slices.Concat(out[:i+1], []byte(mutationValues[rnd.IntN(len(mutationValues))]), out[end:])
		}
	case 3:
		for range 20 {
			if i := rnd.IntN(len(out)); out[i] >= 'a' && out[i] <= 'z' {
				return slices.Concat(out[:i], fmt.Appendf(nil, `\u%04x`, out[i]), out[i+1:])
			}
		}
	default:
		i := rnd.IntN(len(out))
		c := "{}[]\":,n0-9 \\ae.\xff"[rnd.IntN(17)]
		switch rnd.IntN(3) {
		case 0:
			return slices.Insert(out, i, c)
		case 1:
			return slices.Delete(out, i, i+1)
		default:
			out[i] = c
		}
	}
	return out
}

func randomIndex(rnd *rand.Rand, b []byte, c byte) int {
	n := bytes.Count(b, []byte{c})
	if n == 0 {
		return -1
	}
	k := rnd.IntN(n)
	for i, x := range b {
		if x == c {
			if k == 0 {
				return i
			}
			k--
		}
	}
	return -1
}

// Fill sets v and everything below it at random: often zero (what omitempty leaves out), strings
// with characters JSON escapes, times in any zone; never a []byte (base64, which readers leave to
// encoding/json).
func Fill(rnd *rand.Rand, v reflect.Value, depth int) {
	if v.Type() == reflect.TypeFor[time.Time]() {
		v.Set(reflect.ValueOf(time.Unix(rnd.Int64N(1<<35), rnd.Int64N(1e9)).In(time.FixedZone("z", 3600*(rnd.IntN(25)-12)))))
		return
	}
	if rnd.IntN(4) == 0 || depth > 6 {
		v.SetZero()
		return
	}
	switch v.Kind() {
	case reflect.String:
		special := []rune("\"\\/<>&\u2028\u2029\x00\x1f\x7f\n\té中")
		b := []rune("s")
		for n := rnd.IntN(6); n > 0; n-- {
			b = append(b, special[rnd.IntN(len(special))])
		}
		v.SetString(string(b))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(rnd.Int64N(1<<40) - 1<<39)
	case reflect.Uint64:
		v.SetUint(rnd.Uint64() >> rnd.IntN(64))
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetZero()
			return
		}
		s := reflect.MakeSlice(v.Type(), rnd.IntN(3), 3)
		for i := range s.Len() {
			Fill(rnd, s.Index(i), depth+1)
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for n := rnd.IntN(3); n > 0; n-- {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			Fill(rnd, k, depth+1)
			if e.Kind() == reflect.Pointer { // a null value is left to encoding/json
				e.Set(reflect.New(e.Type().Elem()))
				Fill(rnd, e.Elem(), depth+1)
			} else {
				Fill(rnd, e, depth+1)
			}
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		Fill(rnd, p.Elem(), depth+1)
		v.Set(p)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				Fill(rnd, v.Field(i), depth+1)
			}
		}
	default:
		panic(fmt.Sprintf("no random value for a %s", v.Type()))
	}
}
