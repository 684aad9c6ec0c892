package image

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// The regular expressions go-digest v1.0.0 compiles at init (Bulwark builds a copy that checks
// them by hand: third_party/go-digest).
var (
	anchored  = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`)
	encodedRE = map[digest.Algorithm]*regexp.Regexp{
		digest.SHA256: regexp.MustCompile(`^[a-f0-9]{64}$`),
		digest.SHA384: regexp.MustCompile(`^[a-f0-9]{96}$`),
		digest.SHA512: regexp.MustCompile(`^[a-f0-9]{128}$`),
	}
)

// upstreamValidate is go-digest v1.0.0's Digest.Validate.
func upstreamValidate(s string) error {
	i := strings.Index(s, ":")
	if i <= 0 || i+1 == len(s) {
		return digest.ErrDigestInvalidFormat
	}
	alg, encoded := digest.Algorithm(s[:i]), s[i+1:]
	if !alg.Available() {
		if !anchored.MatchString(s) {
			return digest.ErrDigestInvalidFormat
		}
		return digest.ErrDigestUnsupported
	}
	r, ok := encodedRE[alg]
	if !ok {
		return digest.ErrDigestUnsupported
	}
	if alg.Size()*2 != len(encoded) {
		return digest.ErrDigestInvalidLength
	}
	if r.MatchString(encoded) {
		return nil
	}
	return digest.ErrDigestInvalidFormat
}

// TestDigestValidateIsUpstreams: the go-digest Bulwark links answers Parse as upstream's regular
// expressions do, on digests, digests one byte off, and random strings of the grammar's bytes and
// a few others.
func TestDigestValidateIsUpstreams(t *testing.T) {
	sha256 := strings.Repeat("0123456789abcdef", 4)
	corpus := []string{
		"", ":", "a:", ":b", "sha256:", "sha256:" + sha256, "sha384:" + sha256 + sha256[:32],
		"sha512:" + sha256 + sha256, "sha256:" + strings.ToUpper(sha256), "sha256:" + sha256 + "0",
		"sha256:" + sha256[1:], "md5:abc", "tarsum.v1+sha256:" + sha256, "a.b:c", "a..b:c", ".a:c",
		"a.:c", "a-b_c+d.e:Z=_-", "A:b", "a:b:c", "a:b c", "a b:c", "x\x00:y", "é:a", "a:é",
	}
	r := rand.New(rand.NewPCG(14, 1))
	const alphabet = "abcfxyzAFZ0189.+_-=: /\n\x00\xff"
	for i := 0; i < 20000; i++ {
		b := make([]byte, r.IntN(24))
		for j := range b {
			b[j] = alphabet[r.IntN(len(alphabet))]
		}
		corpus = append(corpus, string(b))
		// A digest of a supported algorithm with one byte changed.
		d := []byte("sha256:" + sha256)
		d[r.IntN(len(d))] = alphabet[r.IntN(len(alphabet))]
		corpus = append(corpus, string(d))
	}
	for _, s := range corpus {
		_, got := digest.Parse(s)
		if want := upstreamValidate(s); got != want {
			t.Errorf("Parse(%q) = %v, upstream's %v", s, got, want)
		}
	}
}
