package sandbox

import (
	"os"
	"testing"

	"bulwark.dev/bulwark/sandbox/internal/seccomp/compiler"
)

// TestMain lets the test binary serve as the runtime's re-executed init and exec processes.
func TestMain(m *testing.M) {
	Init()
	// This test binary is the runtime: it compiles seccomp profiles itself, without
	// bulwark-seccomp beside it.
	CompileSeccompInProcess(compiler.Compile)
	os.Exit(m.Run())
}
