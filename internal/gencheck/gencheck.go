// Package gencheck is for tests of generated source files: a file generated from data or types
// (the default seccomp profile's Go form, the request document's encoder) is checked against
// what its generator makes now, and rewritten instead with `go test -update`.
package gencheck

import (
	"bytes"
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite generated files instead of checking them")

// Check fails t unless file holds src, naming the test that rewrites it; with -update it writes
// src to file instead.
func Check(t testing.TB, file string, src []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(file, src, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if cur, err := os.ReadFile(file); err != nil || !bytes.Equal(cur, src) {
		t.Fatalf("%s is not what its generator makes now (%v): go test -run '^%s$' -args -update in its package", file, err, t.Name())
	}
}
