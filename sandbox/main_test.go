package sandbox

import (
	"os"
	"testing"
)

// TestMain lets the test binary serve as the runtime's re-executed init and exec processes.
func TestMain(m *testing.M) {
	Init()
	os.Exit(m.Run())
}
