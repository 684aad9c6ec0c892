package record

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"bulwark.dev/bulwark/internal/jsontext/readertest"
)

// TestReadersAreEncodingJSON: the record's and the client configuration's readers know every
// field of their types, take records of every field filled at random to json.Unmarshal's value,
// and of 10,000 mutations of them take only what json.Unmarshal decodes, to the same value.
func TestReadersAreEncodingJSON(t *testing.T) {
	readertest.Keys(t, reflect.TypeFor[State](), stateKeys)
	readertest.Keys(t, reflect.TypeFor[Target](), targetKeys)
	readertest.Keys(t, reflect.TypeFor[clientConfig](), clientKeys)
	readertest.NoSelfDecoders(t, reflect.TypeFor[State](), reflect.TypeFor[clientConfig]())
	rnd := rand.New(rand.NewPCG(3, 4))
	keys := slices.Concat(stateKeys, targetKeys, clientKeys)
	taken := readertest.Documents(t, rnd, new(State), readertest.Of(readState), keys, 300, 30) +
		readertest.Documents(t, rnd, new(clientConfig), readertest.Of(readClientConfig), keys, 30, 30)
	if taken < 1000 {
		t.Fatalf("only %d mutations taken by the readers: the test mutates too much", taken)
	}
	for _, doc := range []string{`{"expires":null,"Root":"x"}`, `{"targets":{"a":null}}`, `{"root_version":1e3}`, `{"expires":"2026"}`} {
		if _, ok := readertest.Of(readState)([]byte(doc)); ok {
			t.Errorf("state reader took %s", doc)
		}
	}
}
