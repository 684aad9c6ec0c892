package setup

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

// TestWireRoundTrip fills every exported field of a message, nested ones included, with random
// values (lists and maps empty, absent or long, pointers set or nil) and checks the decoded
// message is deeply equal, on many seeds: a field added to any type of the setup protocol
// without its line in wire.go comes back zero and fails here.
func TestWireRoundTrip(t *testing.T) {
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 14))
		var m Message
		fillRandom(rng, reflect.ValueOf(&m).Elem())
		got, err := decodeMessage(encodeMessage(&m))
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if !reflect.DeepEqual(got, &m) {
			t.Fatalf("seed %d: round trip changed the message\n got %+v\nwant %+v", seed, got, &m)
		}
	}
}

// TestWireEveryFieldFilled checks fillRandom reaches every field the codec must carry: a message with
// all of them non-zero exists among the seeds, so the round trip above compares each.
func TestWireEveryFieldFilled(t *testing.T) {
	seen := map[string]bool{}
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 14))
		var m Message
		fillRandom(rng, reflect.ValueOf(&m).Elem())
		nonZeroLeaves(reflect.ValueOf(m), "message", seen)
	}
	var all []string
	leafFields(reflect.TypeOf(Message{}), "message", &all)
	for _, f := range all {
		if !seen[f] {
			t.Errorf("no seed gave %s a value", f)
		}
	}
}

// fillRandom sets v to random values; fields not serialised (the descriptors) stay zero.
func fillRandom(rng *rand.Rand, v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if serialised(v.Type().Field(i)) {
				fillRandom(rng, v.Field(i))
			}
		}
	case reflect.Pointer:
		if rng.IntN(4) == 0 {
			return
		}
		v.Set(reflect.New(v.Type().Elem()))
		fillRandom(rng, v.Elem())
	case reflect.Slice:
		n := rng.IntN(5)
		if n == 0 {
			return // absent and empty lists both decode as nil
		}
		v.Set(reflect.MakeSlice(v.Type(), n, n))
		for i := range n {
			fillRandom(rng, v.Index(i))
		}
	case reflect.Map:
		n := rng.IntN(4)
		if n == 0 {
			return
		}
		v.Set(reflect.MakeMap(v.Type()))
		for range n {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fillRandom(rng, k)
			fillRandom(rng, e)
			v.SetMapIndex(k, e)
		}
	case reflect.String:
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		v.SetString(string(b))
	case reflect.Bool:
		v.SetBool(rng.IntN(2) == 1)
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Int16, reflect.Int8:
		// Descriptors, resources and scores fit 32 bits; NS and Started use all 64.
		if v.Type().Bits() == 64 && v.Kind() == reflect.Int64 {
			v.SetInt(int64(rng.Uint64()))
		} else {
			v.SetInt(int64(int32(rng.Uint32())))
		}
	case reflect.Uint, reflect.Uint64, reflect.Uint32, reflect.Uint16, reflect.Uint8, reflect.Uintptr:
		bits := v.Type().Bits()
		if v.Type().Name() == "Errno" {
			bits = 32
		}
		v.SetUint(rng.Uint64() >> (64 - bits))
	default:
		panic("fill: no case for " + v.Type().String())
	}
}

// serialised reports whether the codec carries field f: every exported field not tagged wire:"-".
func serialised(f reflect.StructField) bool { return f.IsExported() && f.Tag.Get("wire") != "-" }

// leafFields lists the paths of every serialised leaf field of t.
func leafFields(t reflect.Type, path string, out *[]string) {
	switch t.Kind() {
	case reflect.Struct:
		for i := range t.NumField() {
			if f := t.Field(i); serialised(f) {
				leafFields(f.Type, path+"."+f.Name, out)
			}
		}
	case reflect.Pointer, reflect.Slice:
		leafFields(t.Elem(), path, out)
	default:
		*out = append(*out, path)
	}
}

// nonZeroLeaves records the paths of the leaf fields of v that hold a non-zero value.
func nonZeroLeaves(v reflect.Value, path string, seen map[string]bool) {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Type().Field(i); serialised(f) {
				nonZeroLeaves(v.Field(i), path+"."+f.Name, seen)
			}
		}
	case reflect.Pointer:
		if !v.IsNil() {
			nonZeroLeaves(v.Elem(), path, seen)
		}
	case reflect.Slice:
		for i := range v.Len() {
			nonZeroLeaves(v.Index(i), path, seen)
		}
	default:
		if !v.IsZero() {
			seen[path] = true
		}
	}
}
