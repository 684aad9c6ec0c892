// Package encodertest fills values at random for the tests that compare Bulwark's hand-written
// JSON encoders (a container's record, a sandbox's state) with encoding/json, byte for byte.
package encodertest

import (
	"math"
	"math/rand"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

// Fill sets v, and every exported field below it, to a random value: often the zero value (what
// omitempty and omitzero leave out) or, for a slice or a map, an empty one (`[]` or `{}`, not
// null), integers of any size, strings of random bytes, runes and characters JSON escapes, and
// times in any zone. A kind it has no value for fails t: a field added to an encoded type is
// filled, or named, so its encoder's test fails until the encoder writes it.
func Fill(t testing.TB, rnd *rand.Rand, v reflect.Value) {
	t.Helper()
	if v.Type() == reflect.TypeFor[time.Time]() {
		if rnd.Intn(4) > 0 {
			v.Set(reflect.ValueOf(time.Unix(rnd.Int63n(1<<35), rnd.Int63n(1e9)).In(time.FixedZone("z", 3600*(rnd.Intn(25)-12)))))
		}
		return
	}
	if v.Type() == reflect.TypeFor[netip.Prefix]() {
		// A prefix (netip's fields are its own): the zero, invalid one, or an IPv4 or IPv6 one.
		var p netip.Prefix
		switch rnd.Intn(3) {
		case 1:
			p = netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(rnd.Intn(256)), byte(rnd.Intn(256)), 0, 1}), rnd.Intn(33))
		case 2:
			var a [16]byte
			rnd.Read(a[:])
			p = netip.PrefixFrom(netip.AddrFrom16(a), rnd.Intn(129))
		}
		v.Set(reflect.ValueOf(p))
		return
	}
	zero := rnd.Intn(3) == 0
	switch v.Kind() {
	case reflect.Float64:
		if !zero {
			// Every magnitude encoding/json writes in either form, and both signs.
			f := rnd.Float64() * math.Pow(10, float64(rnd.Intn(50)-25))
			if rnd.Intn(2) == 0 {
				f = -f
			}
			v.SetFloat(f)
		}
	case reflect.String:
		if !zero {
			v.SetString(String(rnd))
		}
	case reflect.Bool:
		v.SetBool(!zero)
	case reflect.Int, reflect.Int64, reflect.Int32:
		if !zero {
			v.SetInt(rnd.Int63n(1<<62) - 1<<61) // an Int32 keeps the low bits
		}
	case reflect.Uint, reflect.Uint64, reflect.Uint32, reflect.Uint16:
		if !zero {
			v.SetUint(rnd.Uint64() >> uint(64-v.Type().Bits()))
		}
	case reflect.Slice:
		if zero {
			if rnd.Intn(2) == 0 {
				v.Set(reflect.MakeSlice(v.Type(), 0, 0))
			}
			return
		}
		s := reflect.MakeSlice(v.Type(), rnd.Intn(4), 4)
		for i := 0; i < s.Len(); i++ {
			Fill(t, rnd, s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		if zero {
			if rnd.Intn(2) == 0 {
				v.Set(reflect.MakeMap(v.Type()))
			}
			return
		}
		m := reflect.MakeMap(v.Type())
		for n := rnd.Intn(4); n > 0; n-- {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			Fill(t, rnd, k)
			Fill(t, rnd, e)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Pointer:
		if zero {
			return
		}
		p := reflect.New(v.Type().Elem())
		Fill(t, rnd, p.Elem())
		v.Set(p)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				Fill(t, rnd, v.Field(i))
			}
		}
	default:
		t.Fatalf("no random value for a %s: teach encodertest.Fill, and the encoder", v.Type())
	}
}

// String is a random string of up to 11 pieces: bytes (invalid UTF-8 too), runes, lower-case
// letters and the characters encoding/json escapes (quote, backslash, <, >, &, U+2028, U+2029,
// control characters).
func String(rnd *rand.Rand) string {
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
