package image

import (
	"math/rand/v2"
	"regexp"
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

// TestRefSyntaxMatchesRegexp checks validName and validTag against the expressions they replace,
// on every string of up to 6 bytes over an alphabet holding each class of the grammar, and on
// random longer ones.
func TestRefSyntaxMatchesRegexp(t *testing.T) {
	nameRE := regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+|__)*(\.[a-z0-9-]+)*(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)*$`)
	tagRE := regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
	check := func(s string) {
		if got, want := validName(s), nameRE.MatchString(s); got != want {
			t.Fatalf("validName(%q) = %v, the expression says %v", s, got, want)
		}
		if got, want := validTag(s), tagRE.MatchString(s); got != want {
			t.Fatalf("validTag(%q) = %v, the expression says %v", s, got, want)
		}
	}
	const alphabet = "a1._-:/A"
	var walk func(prefix []byte)
	walk = func(prefix []byte) {
		check(string(prefix))
		if len(prefix) == 6 {
			return
		}
		for i := 0; i < len(alphabet); i++ {
			walk(append(prefix, alphabet[i]))
		}
	}
	walk(nil)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		b := make([]byte, 8+rng.IntN(24))
		for i := range b {
			b[i] = "ab09._-:/A@ "[rng.IntN(12)]
		}
		check(string(b))
	}
	for _, s := range []string{"registry.example.com:5000/team/app", "a__b", "a___b", "a__", "a.-", "localhost", "UPPER"} {
		check(s)
	}
}
