package document

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand"
	"reflect"
	"testing"
)

// jsonEntry decodes data as the cache decoded entries before decodeEntry, refusing anything after
// the entry but white space.
func jsonEntry(data []byte) (cacheEntry, error) {
	var e cacheEntry
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return cacheEntry{}, err
	}
	if len(bytes.TrimLeft(data[dec.InputOffset():], " \t\r\n")) > 0 {
		return cacheEntry{}, errors.New("data after the entry")
	}
	return e, nil
}

// sameAsJSON checks decodeEntry is never more lenient than encoding/json on data: what it decodes,
// encoding/json decodes to the same entry.
func sameAsJSON(t *testing.T, data []byte) (ok bool) {
	t.Helper()
	got, err := decodeEntry(data)
	if err != nil {
		return false
	}
	want, werr := jsonEntry(data)
	if werr != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("%q: decodeEntry %+v; encoding/json %+v, %v", data, got, want, werr)
	}
	return true
}

// randomEntry is an entry with every field set or not, strings from edgeStrings and random bytes.
func randomEntry(r *rand.Rand) cacheEntry {
	s := func() string {
		if r.Intn(2) == 0 {
			return edgeStrings[r.Intn(len(edgeStrings))]
		}
		b := make([]byte, r.Intn(12))
		for i := range b {
			b[i] = byte(r.Intn(256))
		}
		return string(b)
	}
	n := func() *int64 {
		if r.Intn(2) == 0 {
			return nil
		}
		v := []int64{0, -1, 1 << 62, -1 << 63, 512 << 20}[r.Intn(5)]
		return &v
	}
	ss := func() []string {
		switch r.Intn(3) {
		case 0:
			return nil
		case 1:
			return []string{}
		}
		return []string{s(), s()}
	}
	e := cacheEntry{Format: s(), Build: s(), Policy: s(), Input: s(), Without: ss()}
	d := &e.Decision
	d.Allow, d.Revision, d.Duration = r.Intn(2) == 0, s(), 0
	if r.Intn(3) > 0 {
		d.Reasons = []Reason{}
		for range r.Intn(3) {
			d.Reasons = append(d.Reasons, Reason{Code: s(), Message: s(), Path: s()})
		}
	}
	c := &d.Constraints
	c.MaxMemory, c.MaxPids, c.MaxNetworkRate, c.Capabilities, c.Egress = n(), n(), n(), ss(), ss()
	if r.Intn(2) == 0 {
		c.Quotas = &QuotaLimits{Containers: n(), Memory: n(), Pids: n(), NanoCPUs: n(), ImagesSize: n()}
	}
	return e
}

// decodeEntry reads what Store writes exactly as encoding/json does.
func TestDecodeEntryIsJSON(t *testing.T) {
	full := cacheEntry{}
	fill(reflect.ValueOf(&full).Elem(), 3)
	entries := []cacheEntry{{}, full,
		{Format: cacheFormat, Build: "b", Policy: "p", Input: "i",
			Decision: Decision{Allow: true, Reasons: []Reason{}, Revision: "r", Constraints: Constraints{Capabilities: []string{}, Egress: []string{}}}},
		{Decision: Decision{Reasons: []Reason{{Code: "X"}}, Constraints: Constraints{Quotas: &QuotaLimits{}}}},
	}
	r := rand.New(rand.NewSource(14))
	for range 300 {
		entries = append(entries, randomEntry(r))
	}
	for _, e := range entries {
		data, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if !sameAsJSON(t, data) {
			t.Errorf("%s: not decoded", data)
		}
	}
}

// A malformed entry is an error (a miss), never a partly read entry: the cases name what is wrong.
func TestDecodeEntryMalformed(t *testing.T) {
	for _, bad := range []string{
		``, ` `, `null`, `{`, `{"format":`, `{"format":"x"`, `{"format":"x",}`, `{"format" "x"}`, `{,}`, `{"format":"x"}}`,
		`{} {}`, `{}x`, `[]`, `"entry"`, `1`, `{"format":1}`, `{"format":true}`, `{"format":["x"]}`, `{"format":{}}`,
		`{"format":"x","format":"x"}`, `{"Format":"x"}`, `{"FORMAT":"x"}`, `{"other":"x"}`, `{"":"x"}`, `{"form\u0061t":1}`,
		`{"format":"\x01"}`, `{"format":"\q"}`, `{"format":"\u12"}`, `{"format":"abc`, `{"format":"\`, `{1:2}`,
		`{"without":"x"}`, `{"without":[1]}`, `{"without":[null]}`, `{"without":["a",]}`, `{"without":["a"}`,
		`{"decision":[]}`, `{"decision":{"allow":"yes"}}`, `{"decision":{"allow":1}}`, `{"decision":{"allow":tru}}`,
		`{"decision":{"allow":true,"allow":false}}`, `{"decision":{"reasons":{}}}`, `{"decision":{"reasons":[null]}}`,
		`{"decision":{"reasons":[{"code":1}]}}`, `{"decision":{"reasons":[{"why":"x"}]}}`, `{"decision":{"reasons":[{"code":"a","code":"b"}]}}`,
		`{"decision":{"reasons":[{}],"reasons":[]}}`, `{"decision":{"revision":null,"revision":"r"}}`,
		`{"decision":{"constraints":{"maxMemory":1.5}}}`, `{"decision":{"constraints":{"maxMemory":1e3}}}`,
		`{"decision":{"constraints":{"maxPids":"1"}}}`, `{"decision":{"constraints":{"maxPids":01}}}`,
		`{"decision":{"constraints":{"maxPids":-}}}`, `{"decision":{"constraints":{"maxPids":+1}}}`,
		`{"decision":{"constraints":{"maxMemory":9223372036854775808}}}`, `{"decision":{"constraints":{"quotas":{"cpus":1}}}}`,
		`{"decision":{"constraints":{"quotas":[]}}}`, `{"decision":{"constraints":{"capabilities":[1]}}}`,
		`{"decision":{"constraints":{"egress":"all"}}}`, `{"decision":{"durationNs":true}}`, `{"decision":{"durationNs":0.5}}`,
		`{"decision":{"allow":true}, "decision":{"allow":true}}`, `{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9}`,
	} {
		if e, err := decodeEntry([]byte(bad)); err == nil {
			t.Errorf("%s: decoded %+v", bad, e)
		}
	}
}

// Strings are read as encoding/json reads them: escapes, surrogates, invalid UTF-8 as U+FFFD,
// control characters refused.
func TestDecodeEntryStrings(t *testing.T) {
	for _, in := range []string{
		`""`, `"\ud83d\ude00"`, `"\ud83d"`, `"\ud83dx"`, `"\ud83d\u0041"`, `"\udc00\ud83d\ude00"`, `"\ud83d\ud83d\ude00"`,
		`"\/\b\f\n\r\t\"\\\u00e9\u2028"`, "\"raw \xff\xfe é \x7f\"", `"\u0000"`, `"\x01"`, "\"a\x01\"", `"\u12"`,
		`"\u12g4"`, `"\q"`, `"abc`, `"\`, `null`, ` "a" `,
	} {
		for _, data := range []string{`{"format":` + in + `}`, `{"decision":{"reasons":[{"message":` + in + `}]}}`} {
			_, werr := jsonEntry([]byte(data))
			if ok := sameAsJSON(t, []byte(data)); ok != (werr == nil) {
				t.Errorf("%s: decodeEntry ok %v; encoding/json %v", data, ok, werr)
			}
		}
	}
}

// Entries spoiled by a byte (changed, removed or inserted anywhere) are decoded only as
// encoding/json decodes them.
func TestDecodeEntrySpoiled(t *testing.T) {
	r := rand.New(rand.NewSource(15))
	decoded, spoiled := 0, 0
	for range 300 {
		b, err := json.Marshal(randomEntry(r))
		if err != nil {
			t.Fatal(err)
		}
		for range 30 {
			const likely = `{}[]",:\u0123456789eE.-+ tfnl`
			i, c := r.Intn(len(b)), likely[r.Intn(len(likely))]
			if r.Intn(4) == 0 {
				c = byte(r.Intn(256))
			}
			var in string
			switch r.Intn(3) {
			case 0:
				in = string(b[:i]) + string(c) + string(b[i+1:])
			case 1:
				in = string(b[:i]) + string(b[i+1:])
			default:
				in = string(b[:i]) + string(c) + string(b[i:])
			}
			spoiled++
			if sameAsJSON(t, []byte(in)) {
				decoded++
			}
		}
	}
	// Most bytes spoil a string's content, which decodes (and is a miss by its key).
	if decoded == 0 || decoded == spoiled {
		t.Errorf("%d of %d spoiled entries decoded", decoded, spoiled)
	}
}

func FuzzDecodeEntry(f *testing.F) {
	full := cacheEntry{}
	fill(reflect.ValueOf(&full).Elem(), 3)
	data, err := json.Marshal(full)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte(`{"decision":{"constraints":{"quotas":null,"maxPids":-0}},"without":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) { sameAsJSON(t, data) })
}
