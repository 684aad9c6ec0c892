package image

import (
	"strings"
	"testing"
)

// TestTagLength: a tag is at most 128 characters of Docker's tag alphabet.
func TestTagLength(t *testing.T) {
	for tag, ok := range map[string]bool{
		"a":                          true,
		"_x.y-z":                     true,
		strings.Repeat("a", 128):     true,
		strings.Repeat("a", 129):     false,
		".a":                         false,
		"a/b":                        false,
		"a" + strings.Repeat("é", 2): false,
	} {
		if _, err := ParseRef("busybox:" + tag); (err == nil) != ok {
			t.Errorf("tag %q (%d chars): err %v, want ok=%v", tag, len(tag), err, ok)
		}
	}
}
