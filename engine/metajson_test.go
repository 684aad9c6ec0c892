package engine

import (
	"bytes"
	"encoding/json"
	"math/rand"
	"reflect"
	"testing"
	"time"
)

// TestMetaJSONIsEncodingJSON: a record's hand-written encoder writes exactly what encoding/json
// writes for it, compact and indented — the zero record and 3,000 random ones, every field (a
// field added later is filled too, and fails the test until the encoder writes it) with empty
// and set values, strings of any bytes and runes. readMeta decodes with encoding/json, so what
// is read back is what was written.
func TestMetaJSONIsEncodingJSON(t *testing.T) {
	rnd := rand.New(rand.NewSource(1))
	check := func(m *Meta) {
		t.Helper()
		got, err := m.appendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("appendJSON:\n%s\nencoding/json:\n%s", got, want)
		}
		got, err = marshalMeta(m)
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := json.MarshalIndent(m, "", "  "); !bytes.Equal(got, want) {
			t.Fatalf("marshalMeta:\n%s\nencoding/json:\n%s", got, want)
		}
	}
	check(&Meta{})
	for i := 0; i < 3000; i++ {
		m := &Meta{}
		fillRandom(t, rnd, reflect.ValueOf(m).Elem())
		check(m)
	}
	// A time encoding/json cannot write is an error for both.
	if _, err := (&Meta{Created: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}).appendJSON(nil); err == nil {
		t.Fatal("a year past 9999 encoded")
	}
}

// fillRandom sets v, and every exported field below it, to a random value: often the zero value
// (what omitempty and omitzero leave out), strings of random bytes, runes and characters JSON
// escapes.
func fillRandom(t *testing.T, rnd *rand.Rand, v reflect.Value) {
	t.Helper()
	if v.Type() == reflect.TypeFor[time.Time]() {
		if rnd.Intn(4) > 0 {
			v.Set(reflect.ValueOf(time.Unix(rnd.Int63n(1<<35), rnd.Int63n(1e9)).In(time.FixedZone("z", 3600*(rnd.Intn(25)-12)))))
		}
		return
	}
	zero := rnd.Intn(3) == 0
	switch v.Kind() {
	case reflect.String:
		if !zero {
			v.SetString(randomString(rnd))
		}
	case reflect.Bool:
		v.SetBool(!zero)
	case reflect.Int, reflect.Int64, reflect.Int32:
		if !zero {
			v.SetInt(rnd.Int63n(1<<62) - 1<<61)
		}
	case reflect.Uint, reflect.Uint64, reflect.Uint32, reflect.Uint16:
		if !zero {
			v.SetUint(rnd.Uint64() >> uint(64-v.Type().Bits()))
		}
	case reflect.Slice:
		if zero {
			if rnd.Intn(2) == 0 {
				v.Set(reflect.MakeSlice(v.Type(), 0, 0)) // empty, not nil: [] rather than null
			}
			return
		}
		s := reflect.MakeSlice(v.Type(), rnd.Intn(4), 4)
		for i := 0; i < s.Len(); i++ {
			fillRandom(t, rnd, s.Index(i))
		}
		v.Set(s)
	case reflect.Pointer:
		if zero {
			return
		}
		p := reflect.New(v.Type().Elem())
		fillRandom(t, rnd, p.Elem())
		v.Set(p)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fillRandom(t, rnd, v.Field(i))
			}
		}
	default:
		t.Fatalf("no random value for a %s: teach fillRandom and the record's encoder", v.Type())
	}
}

func randomString(rnd *rand.Rand) string {
	const special = "\"\\/<>&\u2028\u2029\x00\x1f\x7f\n\t"
	var b []byte
	for n := rnd.Intn(12); n > 0; n-- {
		switch rnd.Intn(4) {
		case 0:
			b = append(b, byte(rnd.Intn(256)))
		case 1:
			b = append(b, special[rnd.Intn(len(special))])
		case 2:
			b = append(b, string(rune(rnd.Intn(0x10ffff)))...)
		default:
			b = append(b, byte('a'+rnd.Intn(26)))
		}
	}
	return string(b)
}
