package document

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/rand"
	"reflect"
	"testing"
)

// refJSON decodes data as encoding/json decodes one value into an `any` with UseNumber, nothing
// after it but white space.
func refJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	var rest any
	if err := dec.Decode(&rest); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the value")
	}
	return v, nil
}

// randomValue is a JSON value of every kind, strings from edgeStrings and random runes.
func randomValue(r *rand.Rand, depth int) any {
	switch k := r.Intn(8); {
	case k == 0 && depth < 4:
		m := map[string]any{}
		for i := range r.Intn(4) {
			m[randomString(r)] = randomValue(r, depth+1)
			if i == 0 && r.Intn(2) == 0 {
				m["allow"] = randomValue(r, depth+1)
			}
		}
		return m
	case k == 1 && depth < 4:
		a := []any{}
		for range r.Intn(4) {
			a = append(a, randomValue(r, depth+1))
		}
		return a
	case k == 2:
		return r.Intn(2) == 0
	case k == 3:
		return nil
	case k == 4:
		return []float64{0, -1, 1.5, 1e21, -2.5e-7, 9007199254740993}[r.Intn(6)]
	default:
		return randomString(r)
	}
}

func randomString(r *rand.Rand) string {
	if r.Intn(2) == 0 {
		return edgeStrings[r.Intn(len(edgeStrings))]
	}
	b := make([]byte, r.Intn(12))
	for i := range b {
		b[i] = byte(r.Intn(256))
	}
	return string(b)
}

// parseJSON accepts exactly what encoding/json accepts (one value, white space around it) and
// reads the same value: on hand-picked cases, on random values encoding/json wrote, and on every
// way of spoiling them by a byte.
func TestParseJSONIsEncodingJSON(t *testing.T) {
	inputs := []string{
		`{}`, `[]`, `""`, ` {"a" : [1, -0, 0.5, 1e5, 1.5E-3, -2e+2, true, false, null]} `, `{"a":1,"a":"2"}`,
		`"\ud83d\ude00"`, `"\ud83d"`, `"\ud83dx"`, `"\ud83d\u0041"`, `"\udc00\ud83d\ude00"`, `"\ud83d\ud83d\ude00"`,
		`"\/\b\f\n\r\t\"\\\u00e9\u2028"`, "\"raw \xff\xfe é \x7f\"", `"\u0000"`,
		`{`, `[1,]`, `{"a"}`, `{"a":}`, `{,}`, `01`, `1.`, `.5`, `-`, `+1`, `1e`, `"\x01"`, "\"a\x01\"", `"\u12"`,
		`"\u12g4"`, `"\q"`, `tru`, `nul`, `{"a":1}x`, `{} {}`, ``, ` `, `{"a":1]`, `[1}`, `"abc`, `"\`, `{1:2}`,
	}
	r := rand.New(rand.NewSource(14))
	for range 300 {
		b, err := json.Marshal(randomValue(r, 0))
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, string(b))
		// Spoiled by a byte: changed, removed or inserted anywhere.
		for range 20 {
			if len(b) == 0 {
				break
			}
			const likely = `{}[]",:\u0123456789eE.-+ tfn`
			i, c := r.Intn(len(b)), likely[r.Intn(len(likely))]
			if r.Intn(4) == 0 {
				c = byte(r.Intn(256))
			}
			switch r.Intn(3) {
			case 0:
				inputs = append(inputs, string(b[:i])+string(c)+string(b[i+1:]))
			case 1:
				inputs = append(inputs, string(b[:i])+string(b[i+1:]))
			default:
				inputs = append(inputs, string(b[:i])+string(c)+string(b[i:]))
			}
		}
	}
	valid := 0
	for _, in := range inputs {
		want, werr := refJSON([]byte(in))
		got, err := parseJSON([]byte(in))
		if (err == nil) != (werr == nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("%q: parseJSON %#v, %v; encoding/json %#v, %v", in, got, err, want, werr)
		}
		if werr == nil {
			valid++
		}
	}
	if valid < 300 {
		t.Errorf("only %d of %d inputs valid", valid, len(inputs))
	}
}

// Nesting deeper than any entry is refused, not followed.
func TestParseJSONDepth(t *testing.T) {
	deep := bytes.Repeat([]byte("["), 1000)
	if _, err := parseJSON(append(deep, bytes.Repeat([]byte("]"), 1000)...)); err == nil {
		t.Error("1000 nested arrays parsed")
	}
}
