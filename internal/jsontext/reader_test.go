package jsontext

import (
	"encoding/json"
	"testing"
)

type pair struct {
	A string `json:"a"`
	B int64  `json:"b"`
}

func readPair(r *Reader, v *pair) bool {
	return r.Object([]string{"a", "b"}, func(key string) bool {
		if key == "a" {
			return r.String(&v.A)
		}
		return r.Int(&v.B, 64)
	})
}

// TestDecodeIsUnmarshal: Decode gives json.Unmarshal's value or its very error, whether the
// reader takes the document or leaves it to encoding/json.
func TestDecodeIsUnmarshal(t *testing.T) {
	for _, doc := range []string{
		`{"a":"x","b":1}`, ` {"b":-2} `, `null`, `{"a":null}`, `{"c":[1,{"d":null}],"a":"\u00e9"}`, // taken
		`{"A":"x"}`, `{"a":"x","a":"y"}`, // left to encoding/json, which decodes them
		`{"a":1}`, `{"b":"1"}`, `{"b":1.0}`, `{"a":"x"} {}`, `{"a":"x"},`, `{`, ``, `[]`, // refused by both
	} {
		var got, want pair
		err := Decode([]byte(doc), &got, readPair)
		wantErr := json.Unmarshal([]byte(doc), &want)
		if got != want || (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
			t.Errorf("Decode(%s) = %+v, %v; json.Unmarshal %+v, %v", doc, got, err, want, wantErr)
		}
	}
}
