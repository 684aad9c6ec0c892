package oneproc

import (
	"runtime"
	"testing"
)

// TestOneP: a program that imports the package runs with one P, set before its main.
func TestOneP(t *testing.T) {
	if n := runtime.GOMAXPROCS(0); n != 1 {
		t.Errorf("GOMAXPROCS = %d, want 1", n)
	}
}
