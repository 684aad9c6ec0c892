package sandbox

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// fill sets every field reachable from v (a settable value) to something JSON keeps: seed
// varies the values; an omitempty slice or map of every other depth is left empty, not nil,
// and strings carry a byte that is not UTF-8, so that the copy's handling of both is compared.
func fill(t *testing.T, v reflect.Value, seed int, depth int) {
	t.Helper()
	if depth > 12 {
		return
	}
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(seed%2 == 0)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(seed + depth + 1))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(seed + depth + 1))
	case reflect.String:
		v.SetString(strings.Repeat("x", seed%3) + "s\xff" + string(rune('a'+depth)))
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem(), seed, depth+1)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(t, v.Field(i), seed+i, depth+1)
			}
		}
	case reflect.Slice:
		if (seed+depth)%4 == 3 {
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
			return
		}
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fill(t, v.Index(i), seed+i, depth+1)
		}
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		if (seed+depth)%4 == 3 {
			return
		}
		for i := range 2 {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(t, k, seed+i, depth+1)
			fill(t, e, seed+i, depth+1)
			v.SetMapIndex(k, e)
		}
	case reflect.Interface:
		v.Set(reflect.ValueOf(map[string]any{"k": "s\xff", "n": seed, "l": []any{true, nil}}))
	default:
		t.Fatalf("spec field of kind %s: copySpec does not copy it", v.Kind())
	}
}

func jsonRoundTrip(t *testing.T, s *specs.Spec) *specs.Spec {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	out := &specs.Spec{}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// copySpec gives exactly what the JSON round trip it replaced gave, on every field of the spec,
// and shares nothing with the original.
func TestCopySpecIsJSONRoundTrip(t *testing.T) {
	for seed := range 8 {
		s := &specs.Spec{}
		fill(t, reflect.ValueOf(s).Elem(), seed, 0)
		want := jsonRoundTrip(t, s)
		got, err := copySpec(s)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(want)
			t.Fatalf("seed %d: copySpec differs from the JSON round trip:\n got %s\nwant %s", seed, gb, wb)
		}
		before, _ := json.Marshal(s)
		fill(t, reflect.ValueOf(got).Elem(), seed+1, 0)
		if after, _ := json.Marshal(s); string(after) != string(before) {
			t.Fatalf("seed %d: changing the copy changed the original", seed)
		}
	}
	for _, s := range []*specs.Spec{floorSpec(), {}} {
		got, err := copySpec(s)
		if err != nil {
			t.Fatal(err)
		}
		if want := jsonRoundTrip(t, s); !reflect.DeepEqual(got, want) {
			t.Fatalf("copySpec(%+v) = %+v, want %+v", s, got, want)
		}
	}
}

func BenchmarkCopySpec(b *testing.B) {
	s := floorSpec()
	s.Mounts = defaultMounts
	s.Process.Env = []string{"PATH=/usr/bin:/bin", "TERM=xterm"}
	for b.Loop() {
		if _, err := copySpec(s); err != nil {
			b.Fatal(err)
		}
	}
}
