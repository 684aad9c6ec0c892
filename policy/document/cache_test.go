package document

import (
	"testing"

	"golang.org/x/sys/unix"
)

// BuildDigestOf, given this process's executable file's stat, is BuildDigest; another stat (a
// rebuilt or changed binary) is another key.
func TestBuildDigestOf(t *testing.T) {
	var self, other unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &self); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat("/proc/self", &other); err != nil {
		t.Fatal(err)
	}
	if got, want := BuildDigestOf(&self, &other), BuildDigest(&other); got != want || got == "" {
		t.Errorf("BuildDigestOf = %q, BuildDigest = %q", got, want)
	}
	changed := self
	changed.Ctim.Nsec++
	if BuildDigestOf(&changed, &other) == BuildDigest(&other) {
		t.Error("a changed binary's stat gives the same key")
	}
}
