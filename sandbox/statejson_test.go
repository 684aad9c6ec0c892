package sandbox

import (
	"bytes"
	"encoding/json"
	"math/rand"
	"reflect"
	"testing"

	"bulwark.dev/bulwark/internal/jsontext/encodertest"
)

// TestStateJSONIsEncodingJSON: the state's hand-written encoder writes exactly what encoding/json
// writes for it — the zero state and 3,000 random ones, every field (a field added later is
// filled too) with empty and set values, strings of any bytes and runes. readState decodes with
// encoding/json, so what is read back is what was written.
func TestStateJSONIsEncodingJSON(t *testing.T) {
	rnd := rand.New(rand.NewSource(1))
	check := func(st *stateFile) {
		t.Helper()
		got, err := st.appendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("appendJSON:\n%s\nencoding/json:\n%s", got, want)
		}
	}
	check(&stateFile{})
	for i := 0; i < 3000; i++ {
		st := &stateFile{}
		encodertest.Fill(t, rnd, reflect.ValueOf(st).Elem())
		check(st)
	}
}
