package image

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"bulwark.dev/bulwark/image/internal/untar"
	"bulwark.dev/bulwark/internal/jsontext/readertest"
)

// TestOCIReadersKnowEveryField: each hand reader's keys are exactly its type's fields (an
// image-spec update adding one fails here, rather than the reader skipping it), and no type they
// read decodes itself but time.Time.
func TestOCIReadersKnowEveryField(t *testing.T) {
	readertest.Keys(t, reflect.TypeFor[ocispec.Index](), indexKeys)
	readertest.Keys(t, reflect.TypeFor[ocispec.Manifest](), manifestKeys)
	readertest.Keys(t, reflect.TypeFor[ocispec.Descriptor](), descriptorKeys)
	readertest.Keys(t, reflect.TypeFor[ocispec.Platform](), platformKeys)
	readertest.Keys(t, reflect.TypeFor[ocispec.Image](), imageKeys)
	readertest.Keys(t, reflect.TypeFor[ocispec.ImageConfig](), configKeys)
	readertest.Keys(t, reflect.TypeFor[ocispec.RootFS](), rootfsKeys)
	readertest.Keys(t, reflect.TypeFor[ocispec.History](), historyKeys)
	readertest.Keys(t, reflect.TypeFor[layerRecord](), layerKeys)
	readertest.Keys(t, reflect.TypeFor[untar.Report](), reportKeys)
	readertest.NoSelfDecoders(t, reflect.TypeFor[ocispec.Index](), reflect.TypeFor[ocispec.Manifest](), reflect.TypeFor[ocispec.Image](),
		reflect.TypeFor[layerRecord]())
}

// TestOCIReadersAreEncodingJSON: indexes, manifests, configurations and layer records of every
// field filled at random are all taken by the readers, to json.Unmarshal's value; of 43,000
// mutations of them,
// whatever a reader takes is what json.Unmarshal gives, without error; and the cases a reader
// must leave to encoding/json are left to it.
func TestOCIReadersAreEncodingJSON(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	keys := slices.Concat(manifestKeys, descriptorKeys, platformKeys, imageKeys, configKeys, historyKeys)
	taken := readertest.Documents(t, rnd, new(ocispec.Index), readertest.Of(readIndex), keys, 400, 33) +
		readertest.Documents(t, rnd, new(ocispec.Manifest), readertest.Of(readManifest), keys, 400, 33) +
		readertest.Documents(t, rnd, new(ocispec.Image), readertest.Of(readImage), keys, 400, 33) +
		readertest.Documents(t, rnd, new(layerRecord), readertest.Of(readLayerRecordJSON), slices.Concat(layerKeys, reportKeys), 100, 30)
	if taken < 5000 {
		t.Fatalf("only %d mutations taken by the readers: the test mutates too much", taken)
	}
	for _, doc := range []string{
		`{"schemaVersion":2,"MediaType":"x"}`,               // a field's name but for case
		`{"schemaVersion":2,"schemaVersion":3}`,             // a key twice
		`{"schemaVersion":2.0}`,                             // not an integer
		`{"schemaVersion":2}x`,                              // text after the document
		`{"schemaVersion":2},`,                              // a separator after it
		`{"layers":[{"data":"e30="}]}`,                      // base64
		`{"layers":[null]}`,                                 // a null element
		`{"annotations":{"a":null}}`,                        // a null value
		`{"config":{"size":99999999999999999999}}`,          // too large
		`{"config":{"platform":{"os.features":["a",1]}}}`,   // a value of another kind
		`{"config":{"platform":{"os.features":{"a":"b"}}}}`, // an object for an array
	} {
		if _, ok := readertest.Of(readManifest)([]byte(doc)); ok {
			t.Errorf("manifest reader took %s", doc)
		}
	}
	for _, doc := range []string{
		`{"created":"2026-01-01T00:00:0\u0030Z"}`, // an escape time.Time refuses
		`{"created":"2026-01-01"}`,
		`{"config":{"ExposedPorts":{"80/tcp":{"a":1}}}}`,
		`{"rootfs":{"diff_ids":"sha256:x"}}`,
	} {
		if _, ok := readertest.Of(readImage)([]byte(doc)); ok {
			t.Errorf("image reader took %s", doc)
		}
	}
}
