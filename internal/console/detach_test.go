package console

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseDetachKeys(t *testing.T) {
	for in, want := range map[string][]byte{
		"ctrl-p,ctrl-q": {16, 17}, "ctrl-a": {1}, "CTRL-Z": {26}, "ctrl-@": {0}, "ctrl-[": {27},
		"ctrl-\\": {28}, "ctrl-_": {31}, "a,ctrl-b": {'a', 2},
	} {
		if got, err := ParseDetachKeys(in); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%q: %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "ctrl-", "ctrl-1", "ab", "ctrl-p,,ctrl-q"} {
		if _, err := ParseDetachKeys(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestDetachReader: the sequence ends the stream (byte by byte too), a broken partial match is
// passed on whole, and what came before the sequence is delivered.
func TestDetachReader(t *testing.T) {
	keys := []byte{16, 17}
	for _, tc := range []struct {
		in, want string
		detached bool
	}{
		{"abc\x10\x11def", "abc", true},
		{"ab\x10c\x10\x10\x11", "ab\x10c\x10", true},
		{"\x10x\x11", "\x10x\x11", false},
		{"plain", "plain", false},
	} {
		for _, one := range []bool{false, true} {
			var r io.Reader = strings.NewReader(tc.in)
			if one {
				r = iotest.OneByteReader(r)
			}
			got, err := io.ReadAll(NewDetachReader(r, keys))
			if string(got) != tc.want || errors.Is(err, ErrDetached) != tc.detached {
				t.Errorf("%q (one byte at a time: %v): %q, %v", tc.in, one, got, err)
			}
		}
	}
}
