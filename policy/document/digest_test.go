package document

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// edgeStrings are what encoding/json escapes (or replaces).
var edgeStrings = []string{"", "plain", `<a href="x">&amp;</a>`, "\\\b\f\n\r\t\x00\x01\x1f\x7f", "\xff\xfe bad\xc3", "\u2028\u2029", "é中😀"}

// fill sets every field reachable from v to a non-zero value (maps and slices with several
// elements, strings from edgeStrings), so a field appendJSON encodes differently cannot hide.
func fill(v reflect.Value, n int) {
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), n)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), n+i)
			}
		}
	case reflect.String:
		v.SetString(edgeStrings[n%len(edgeStrings)])
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(-int64(n) - 1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(n) + 1)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 3, 3)
		for i := range 3 {
			fill(s.Index(i), n+i)
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for i := range 4 {
			k := reflect.New(v.Type().Key()).Elem()
			fill(k, n+i)
			e := reflect.New(v.Type().Elem()).Elem()
			fill(e, n+i)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	default:
		panic("fill: " + v.Type().String())
	}
}

func jsonDigest(t *testing.T, req *Request) string {
	t.Helper()
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// InputDigest's encoding is encoding/json's, byte for byte: for every field set (with every
// string escaping case), for none, and for every request of the policy corpus.
func TestInputDigestIsJSON(t *testing.T) {
	reqs := map[string]*Request{"zero": {}}
	for i := range len(edgeStrings) {
		full := &Request{}
		fill(reflect.ValueOf(full).Elem(), i)
		reqs["full"+string(rune('0'+i))] = full
	}
	files, err := filepath.Glob("../testdata/corpus/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("corpus: %v %v", files, err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var c struct {
			Request *Request `json:"request"`
		}
		if err := json.Unmarshal(data, &c); err != nil {
			t.Fatal(f, err)
		}
		reqs[filepath.Base(f)] = c.Request
	}
	for name, req := range reqs {
		want, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendRequest(nil, req); !bytes.Equal(got, want) {
			t.Errorf("%s: appendRequest\n%s\nencoding/json\n%s", name, got, want)
		}
		if InputDigest(req) != jsonDigest(t, req) {
			t.Errorf("%s: digest differs", name)
		}
	}
}
