package sandbox

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

// FuzzDecodeMessage feeds the setup-message decoder arbitrary bodies (seeded with real encodings):
// it must never panic, and a body it accepts must be a message that encodes and decodes back to
// itself, with no more than the body's bytes allocated per element read.
func FuzzDecodeMessage(f *testing.F) {
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 14))
		var m message
		fillRandom(rng, reflect.ValueOf(&m).Elem())
		f.Add(encodeMessage(&m))
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMessage(b)
		if err != nil {
			return
		}
		again, err := decodeMessage(encodeMessage(m))
		if err != nil {
			t.Fatalf("an accepted message does not decode once encoded: %v", err)
		}
		if !reflect.DeepEqual(again, m) {
			t.Fatalf("an accepted message changes once encoded\n got %+v\nwant %+v", again, m)
		}
	})
}
