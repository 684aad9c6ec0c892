package sandbox

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// copySpec returns a deep copy of s, the same spec a JSON round trip (json.Marshal, then
// json.Unmarshal into a new Spec) gives, which is what it replaced: that round trip cost
// ≈ 0.1 ms of every floor (the policy gate's dry run and Create's). As the round trip did, the
// copy leaves an empty slice or map of an omitempty field nil, drops fields JSON does not see,
// replaces each byte of a string that is not valid UTF-8 with U+FFFD, and decodes the one
// free-form field (Windows.CredentialSpec) from its JSON (TestCopySpecIsJSONRoundTrip compares
// both on every field of the spec).
func copySpec(s *specs.Spec) (*specs.Spec, error) {
	out := &specs.Spec{}
	if err := copyInto(reflect.ValueOf(out).Elem(), reflect.ValueOf(s).Elem(), false); err != nil {
		return nil, fmt.Errorf("copy spec: %w", err)
	}
	return out, nil
}

// copyInto copies src into dst, a zero value of its type; omitEmpty says src is an omitempty
// field.
func copyInto(dst, src reflect.Value, omitEmpty bool) error {
	t := src.Type()
	switch src.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		dst.Set(src)
	case reflect.String:
		dst.SetString(jsonString(src.String()))
	case reflect.Pointer:
		if src.IsNil() {
			return nil
		}
		p := reflect.New(t.Elem())
		if err := copyInto(p.Elem(), src.Elem(), false); err != nil {
			return err
		}
		dst.Set(p)
	case reflect.Struct:
		for _, f := range jsonFields(t) {
			if err := copyInto(dst.Field(f.index), src.Field(f.index), f.omitEmpty); err != nil {
				return fmt.Errorf("%s: %w", t.Field(f.index).Name, err)
			}
		}
	case reflect.Slice:
		if src.IsNil() || src.Len() == 0 && omitEmpty {
			return nil
		}
		if in, ok := src.Interface().([]string); ok {
			ss := make([]string, len(in))
			for i, s := range in {
				ss[i] = jsonString(s)
			}
			dst.Set(reflect.ValueOf(ss))
			return nil
		}
		dst.Set(reflect.MakeSlice(t, src.Len(), src.Len()))
		for i := range src.Len() {
			if err := copyInto(dst.Index(i), src.Index(i), false); err != nil {
				return err
			}
		}
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return fmt.Errorf("unsupported map key %s", t.Key())
		}
		if src.IsNil() || src.Len() == 0 && omitEmpty {
			return nil
		}
		dst.Set(reflect.MakeMapWithSize(t, src.Len()))
		for it := src.MapRange(); it.Next(); {
			e := reflect.New(t.Elem()).Elem()
			if err := copyInto(e, it.Value(), false); err != nil {
				return err
			}
			dst.SetMapIndex(reflect.ValueOf(jsonString(it.Key().String())).Convert(t.Key()), e)
		}
	case reflect.Interface:
		// Only Windows.CredentialSpec, free-form: JSON-decoded as the round trip did.
		if src.IsNil() {
			return nil
		}
		b, err := json.Marshal(src.Interface())
		if err != nil {
			return err
		}
		return json.Unmarshal(b, dst.Addr().Interface())
	default:
		return fmt.Errorf("unsupported %s", t)
	}
	return nil
}

// warmSpecCopy fills jsonFields' cache for every struct type a spec can hold (WarmFloor): in a
// fresh process, reading each type's fields was most of its first copy.
func warmSpecCopy() { warmFields(reflect.TypeFor[specs.Spec](), map[reflect.Type]bool{}) }

func warmFields(t reflect.Type, seen map[reflect.Type]bool) {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
		warmFields(t.Elem(), seen)
	case reflect.Struct:
		if seen[t] {
			return
		}
		seen[t] = true
		for _, f := range jsonFields(t) {
			warmFields(t.Field(f.index).Type, seen)
		}
	}
}

// jsonField is a struct field JSON encodes.
type jsonField struct {
	index     int
	omitEmpty bool
}

// structFields caches jsonFields per struct type.
var structFields sync.Map // reflect.Type → []jsonField

// jsonFields are the fields of struct type t that JSON encodes.
func jsonFields(t reflect.Type) []jsonField {
	if fs, ok := structFields.Load(t); ok {
		return fs.([]jsonField)
	}
	var fs []jsonField
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if !f.IsExported() || tag == "-" {
			continue
		}
		fs = append(fs, jsonField{index: i, omitEmpty: strings.Contains(tag, ",omitempty")})
	}
	structFields.Store(t, fs)
	return fs
}

// jsonString is s as encoding/json writes it: each byte that is not part of a valid UTF-8
// sequence replaced with U+FFFD.
func jsonString(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}
