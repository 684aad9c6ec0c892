package headbuf

import (
	"strings"
	"testing"
)

// The buffer keeps the first Max bytes across writes, reports every write whole, and quotes
// what it kept, trimmed, for an error.
func TestBuffer(t *testing.T) {
	b := &Buffer{Max: 8}
	for _, p := range []string{"  abc", "defgh", "ijk"} {
		if n, err := b.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", p, n, err)
		}
	}
	if got := b.String(); got != "  abcdef" {
		t.Errorf("kept %q, want %q", got, "  abcdef")
	}
	if got := b.Quoted(); got != `: "abcdef"` {
		t.Errorf("Quoted() = %s", got)
	}
	if got := (&Buffer{Max: 8}).Quoted(); got != "" {
		t.Errorf("Quoted() of nothing = %q", got)
	}
	blank := &Buffer{Max: 8}
	blank.Write([]byte(strings.Repeat(" ", 20)))
	if got := blank.Quoted(); got != "" {
		t.Errorf("Quoted() of space = %q", got)
	}
}
