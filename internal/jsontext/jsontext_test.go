package jsontext

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

// TestAppendStringIsJSON: AppendString writes what encoding/json writes for every byte alone,
// every special rune, invalid UTF-8 and random strings.
func TestAppendStringIsJSON(t *testing.T) {
	cases := []string{"", "plain", "<a href=\"x\">&amp;</a>", "\u2028\u2029", "\xff\xfe", "tab\there\n", "é日本\U0001F600"}
	for c := 0; c < 256; c++ {
		cases = append(cases, string([]byte{byte(c)}), "x"+string([]byte{byte(c)})+"y")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune{'a', '"', '\\', '<', '&', 0, 0x1f, 0x7f, 'é', 0x2028, 0xfffd, 0x10ffff}
	for range 2000 {
		var b []byte
		for range rng.IntN(24) {
			if rng.IntN(8) == 0 {
				b = append(b, byte(rng.IntN(256)))
			} else {
				b = utf8.AppendRune(b, alphabet[rng.IntN(len(alphabet))])
			}
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendString([]byte("pre"), s); string(got) != "pre"+string(want) {
			t.Fatalf("AppendString(%q) = %s, want %s", s, got[3:], want)
		}
	}
}

func TestHex4(t *testing.T) {
	for in, want := range map[string]rune{"0000": 0, "00e9": 0xe9, "D83D": 0xd83d, "fFfF": 0xffff, "12345": 0x1234} {
		if r, ok := Hex4([]byte(in)); !ok || r != want {
			t.Errorf("Hex4(%q) = %#x %v, want %#x", in, r, ok, want)
		}
	}
	for _, in := range []string{"", "123", "12g4", "-123", " 123"} {
		if _, ok := Hex4([]byte(in)); ok {
			t.Errorf("Hex4(%q) read a code unit", in)
		}
	}
}
