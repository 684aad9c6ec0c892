package specjson

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestEncodeIsJSON: Encode writes json.Marshal's bytes for specs with every field filled at
// random — strings with everything encoding/json escapes or replaces (quotes, control
// characters, <>&, U+2028/9, invalid UTF-8), integers across their range, empty and nil slices
// and maps, nil pointers, an interface value — and for nil and empty specs.
func TestEncodeIsJSON(t *testing.T) {
	specsToTry := []*specs.Spec{nil, {}}
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 3))
		var s specs.Spec
		fill(r, reflect.ValueOf(&s).Elem(), 0)
		specsToTry = append(specsToTry, &s)
	}
	for i, s := range specsToTry {
		want, werr := json.Marshal(s)
		got, err := Encode(s)
		if err != nil || werr != nil || !bytes.Equal(got, want) {
			t.Fatalf("spec %d: Encode\n%s (%v)\njson.Marshal\n%s (%v)", i, got, err, want, werr)
		}
	}
}

// An interface value encoding/json cannot encode is its error.
func TestEncodeInterfaceError(t *testing.T) {
	s := &specs.Spec{Windows: &specs.Windows{CredentialSpec: make(chan int)}}
	_, werr := json.Marshal(s)
	if _, err := Encode(s); err == nil || werr == nil {
		t.Fatalf("Encode: %v, json.Marshal: %v", err, werr)
	}
}
