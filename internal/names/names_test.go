package names

import (
	"regexp"
	"strings"
	"testing"
)

// TestSyntax: a container's or volume's name is [A-Za-z0-9][A-Za-z0-9_.-]{0,127} and a tenant
// [a-z0-9][a-z0-9-]{0,62}, their lengths included (checked apart from the patterns).
func TestSyntax(t *testing.T) {
	for name, want := range map[string]bool{
		"web": true, "a.b_c-1": true, strings.Repeat("c", 128): true,
		strings.Repeat("c", 129): false, "": false, ".x": false, "a/b": false, "a b": false,
		"Z9": true, "x-": true, "_x": false, "-x": false, "a:b": false, "é": false,
	} {
		if got := Object(name); got != want {
			t.Errorf("Object(%q) = %v, want %v", name, got, want)
		}
	}
	for tenant, want := range map[string]bool{
		"acme": true, "a-1": true, strings.Repeat("t", 63): true,
		strings.Repeat("t", 64): false, "": false, "Acme": false, "-a": false, "a_b": false,
		"0": true, "a-": true, "a.b": false,
	} {
		if got := Tenant(tenant); got != want {
			t.Errorf("Tenant(%q) = %v, want %v", tenant, got, want)
		}
	}
}

// TestSyntaxMatchesPatterns: a container's or volume's name is [A-Za-z0-9][A-Za-z0-9_.-]{0,127} and a tenant
// [a-z0-9][a-z0-9-]{0,62}, their lengths included (checked apart from the patterns).
func TestSyntaxMatchesPatterns(t *testing.T) {
	// The hand-written checks accept what the patterns they replaced accepted: every one- and
	// two-byte string, and each byte at the end of a long valid one.
	nameRE := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	tenantRE := regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	for a := range 256 {
		for b := -1; b < 256; b++ {
			s := string([]byte{byte(a)})
			if b >= 0 {
				s += string([]byte{byte(b)})
			}
			for _, s := range []string{s, strings.Repeat("a", 62) + s, strings.Repeat("a", 127) + s} {
				if Object(s) != nameRE.MatchString(s) || Tenant(s) != tenantRE.MatchString(s) {
					t.Fatalf("%q: Object %v, Tenant %v; the patterns say %v, %v", s, Object(s), Tenant(s),
						nameRE.MatchString(s), tenantRE.MatchString(s))
				}
			}
		}
	}
	for name, want := range map[string]bool{
		"db": true, "a.b_c-1": true, "A": true, strings.Repeat("v", 128): true,
		strings.Repeat("v", 129): false, "": false, ".db": false, "-db": false, "a/b": false,
		"..": false, "a b": false, "db\n": false,
	} {
		if got := Object(name); got != want {
			t.Errorf("Object(%q) = %v, want %v", name, got, want)
		}
	}
	for tenant, want := range map[string]bool{
		"acme": true, "a-1": true, strings.Repeat("t", 63): true,
		strings.Repeat("t", 64): false, "": false, "Acme": false, "-a": false, "a_b": false, "a.b": false,
	} {
		if got := Tenant(tenant); got != want {
			t.Errorf("Tenant(%q) = %v, want %v", tenant, got, want)
		}
	}
}
