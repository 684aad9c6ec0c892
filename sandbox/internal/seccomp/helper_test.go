package seccomp

import (
	"runtime"
	"strings"
	"testing"

	"bulwark.dev/bulwark/profiles"
)

// TestParseReply: the runtime takes a helper's program only from an intact entry of this format
// for the profile it sent, this architecture and, in a stamped build, this build's libseccomp;
// anything else fails the compile (and so the start).
func TestParseReply(t *testing.T) {
	p := profiles.DefaultSeccomp()
	prog, err := fakeCompile(p)
	if err != nil {
		t.Fatal(err)
	}
	prog.Flags, prog.Notes = 2, []string{"a note"}
	digest := prog.Digest
	defer func(v string) { libseccomp = v }(libseccomp)
	libseccomp = "2.5.4"

	got, err := parseReply(Reply(prog, "2.5.4"), digest)
	if err != nil || got.Sum() != prog.Sum() || got.Flags != 2 || len(got.Notes) != 1 || got.Notes[0] != "a note" {
		t.Fatalf("intact reply: %+v, %v", got, err)
	}
	good := Reply(prog, "2.5.4")
	other := *prog
	other.Digest = "sha256:" + strings.Repeat("0", 64)
	otherArch := cacheEntry{Format: cacheFormat, Digest: digest, Libseccomp: "2.5.4", Arch: map[string]string{"amd64": "arm64"}[runtime.GOARCH] + "x", BPF: prog.Bytes()}.marshal()
	oldFormat := cacheEntry{Format: "bulwark-seccomp-v2", Digest: digest, Libseccomp: "2.5.4", Arch: runtime.GOARCH, BPF: prog.Bytes()}.marshal()
	badBPF := cacheEntry{Format: cacheFormat, Digest: digest, Libseccomp: "2.5.4", Arch: runtime.GOARCH, BPF: []byte{1, 2, 3}}.marshal()
	for name, reply := range map[string][]byte{
		"empty":              nil,
		"garbage":            []byte("compiled"),
		"truncated":          good[:len(good)-1],
		"flipped":            flipBPF(t, good),
		"another profile":    Reply(&other, "2.5.4"),
		"another libseccomp": Reply(prog, "2.4.1"),
		"another arch":       otherArch,
		"another format":     oldFormat,
		"not a program":      badBPF,
	} {
		if got, err := parseReply(reply, digest); err == nil {
			t.Errorf("%s: reply accepted: %+v", name, got)
		}
	}
	// Unstamped (go build): the key names no version, so none is required.
	libseccomp = ""
	if _, err := parseReply(Reply(prog, "2.4.1"), digest); err != nil {
		t.Errorf("unstamped build: %v", err)
	}
}
