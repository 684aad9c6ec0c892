package network

import (
	"strings"
	"testing"
)

// TestNameSyntax: network names are at most 63 characters, aliases at most 128.
func TestNameSyntax(t *testing.T) {
	for name, ok := range map[string]bool{
		"net1":                  true,
		"a_b.c-d":               true,
		strings.Repeat("a", 63): true,
		strings.Repeat("a", 64): false,
		"Net":                   false,
		"-net":                  false,
		"host":                  false,
	} {
		if err := checkName(name); (err == nil) != ok {
			t.Errorf("network name %q (%d chars): err %v, want ok=%v", name, len(name), err, ok)
		}
	}
	for alias, ok := range map[string]bool{
		"Web.1":                  true,
		strings.Repeat("a", 128): true,
		strings.Repeat("a", 129): false,
		"_web":                   false,
	} {
		if got := validAlias(alias); got != ok {
			t.Errorf("alias %q: valid=%v, want %v", alias, got, ok)
		}
	}
}
