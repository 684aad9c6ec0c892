package document

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// jsonEntry decodes data as the cache decoded entries before decodeEntry.
func jsonEntry(data []byte) (cacheEntry, error) {
	var e cacheEntry
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(&e)
	return e, err
}

// decodeEntry reads what Store writes exactly as encoding/json does, and refuses what is not an
// entry.
func TestDecodeEntryIsJSON(t *testing.T) {
	full := cacheEntry{}
	fill(reflect.ValueOf(&full).Elem(), 3)
	entries := map[string]cacheEntry{
		"zero": {},
		"full": full,
		"allow": {Format: cacheFormat, Build: "b", Policy: "p", Input: "i",
			Decision: Decision{Allow: true, Reasons: []Reason{}, Revision: "r", Constraints: Constraints{Capabilities: []string{}, Egress: []string{}}}},
		"quotas with none set": {Decision: Decision{Reasons: []Reason{{Code: "X"}}, Constraints: Constraints{Quotas: &QuotaLimits{}}}},
	}
	for name, e := range entries {
		data, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		want, err := jsonEntry(data)
		if err != nil {
			t.Fatal(name, err)
		}
		got, err := decodeEntry(data)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: decodeEntry %+v, %v\nencoding/json %+v", name, got, err, want)
		}
	}
	for _, bad := range []string{
		`{"format":`, `[]`, `{"format":1}`, `{"other":"x"}`, `{"decision":{"allow":"yes"}}`,
		`{"decision":{"reasons":{}}}`, `{"decision":{"reasons":[{"code":1}]}}`, `{"decision":{"reasons":[{"why":"x"}]}}`,
		`{"decision":{"constraints":{"maxMemory":1.5}}}`, `{"decision":{"constraints":{"maxPids":"1"}}}`,
		`{"decision":{"constraints":{"maxMemory":9223372036854775808}}}`, `{"decision":{"constraints":{"quotas":{"cpus":1}}}}`,
		`{"decision":{"constraints":{"capabilities":[1]}}}`, `{"decision":{"durationNs":true}}`, `{} {}`, `{"without":"x"}`,
	} {
		if _, err := decodeEntry([]byte(bad)); err == nil {
			t.Errorf("%s: decoded", bad)
		}
	}
}
