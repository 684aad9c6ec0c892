package seccomp

import (
	"reflect"
	"testing"
)

// TestEntryLayout: an entry reads back as written; any changed byte, any cut and anything
// appended make it unreadable, never a different entry.
func TestEntryLayout(t *testing.T) {
	for _, e := range []cacheEntry{
		{Format: cacheFormat, Digest: "sha256:ab", Libseccomp: "2.5.4", Arch: "amd64", Flags: 2,
			Notes: []string{"syscall \"x\" unknown", ""}, BPF: []byte{0x20, 0, 0, 0, 4, 0, 0, 0}},
		{Format: cacheFormat, Digest: "d", Libseccomp: "none", Arch: "arm64", BPF: []byte{6, 0, 0, 0, 0, 0, 0xff, 0x7f}},
	} {
		data := e.marshal()
		got, ok := parseEntry(data)
		if !ok || !reflect.DeepEqual(got, e) {
			t.Fatalf("read back %+v, %v; want %+v", got, ok, e)
		}
		for i := range data {
			bad := append([]byte(nil), data...)
			bad[i] ^= 0x10
			if _, ok := parseEntry(bad); ok {
				t.Errorf("byte %d changed: entry read", i)
			}
		}
		for n := range len(data) {
			if _, ok := parseEntry(data[:n]); ok {
				t.Errorf("cut to %d bytes: entry read", n)
			}
		}
		if _, ok := parseEntry(append(append([]byte(nil), data...), 0)); ok {
			t.Error("a byte appended: entry read")
		}
	}
}
