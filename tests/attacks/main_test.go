// Package attacks replays known container breakouts against Bulwark sandboxes; each must fail,
// and each test asserts the errno of the step that stops it, layer by layer.
package attacks

import (
	"os"
	"testing"

	"bulwark.dev/bulwark/sandbox"
	"bulwark.dev/bulwark/sandbox/seccompc"
	"bulwark.dev/bulwark/tests/internal/testenv"
)

func TestMain(m *testing.M) {
	sandbox.Init() // returns unless this process is a container's init
	// This test binary is the runtime: it compiles seccomp profiles itself, without
	// bulwark-seccomp beside it.
	sandbox.CompileSeccompInProcess(seccompc.Compile)
	os.Exit(testenv.Main(m))
}
