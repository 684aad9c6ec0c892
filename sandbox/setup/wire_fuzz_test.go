package setup

import (
	"encoding/binary"
	"math/rand/v2"
	"reflect"
	"runtime"
	"testing"
	"unsafe"
)

// FuzzDecodeMessage feeds the setup-message decoder arbitrary bodies (seeded with real encodings):
// it must never panic, and a body it accepts must be a message that encodes and decodes back to
// itself, with no more than the body's bytes allocated per element read.
func FuzzDecodeMessage(f *testing.F) {
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 14))
		var m Message
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

// TestWireAllocationBounded: a frame of the longest lists its bytes can hold (empty elements) makes
// the decoder allocate at most the decoded elements themselves — each list once, at the size its
// count says — not the repeated growth of appending element by element, which allocated 72-76
// times a frame's size (a 16 MiB frame: 1.2 GB) for lists of steps, mounts or strings.
func TestWireAllocationBounded(t *testing.T) {
	const size = 1 << 20
	lists := map[string]struct {
		head []byte // the fields before the list
		min  int    // encoded bytes of an empty element
		elem uintptr
	}{
		"steps":  {[]byte{0, 0}, 2, unsafe.Sizeof(StepTime{})},
		"mounts": {[]byte{0, 0, 0, 0, 1, 0, 0, 0}, 8, unsafe.Sizeof(MountPlan{})},
		"args":   {[]byte{0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 1, unsafe.Sizeof("")},
	}
	for name, l := range lists {
		n := (size - len(l.head) - 8) / l.min
		body := binary.AppendUvarint(append([]byte(nil), l.head...), uint64(n))
		body = append(body, make([]byte, n*l.min)...)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		decodeMessage(body) //nolint:errcheck // the allocation is what is measured
		runtime.ReadMemStats(&after)
		got, limit := after.TotalAlloc-before.TotalAlloc, uint64(n)*uint64(l.elem)+size
		if got > limit {
			t.Errorf("%s: a %d-byte frame of %d empty elements allocated %d bytes, more than the %d the elements take", name, len(body), n, got, limit)
		}
	}
}
