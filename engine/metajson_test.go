package engine

import (
	"bytes"
	"encoding/json"
	"math/rand"
	"reflect"
	"testing"
	"time"

	"bulwark.dev/bulwark/internal/jsontext/encodertest"
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
		encodertest.Fill(t, rnd, reflect.ValueOf(m).Elem())
		check(m)
	}
	// A time encoding/json cannot write is an error for both.
	if _, err := (&Meta{Created: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}).appendJSON(nil); err == nil {
		t.Fatal("a year past 9999 encoded")
	}
}
