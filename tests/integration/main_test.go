// Package integration creates real sandboxes through the sandbox Go API (in this test binary,
// which sandbox.Init turns into the container init when re-executed) and through the
// bulwark-runc binary, runs the probe inside, and asserts every item of the floor on what the
// probe reports.
package integration

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

// probe returns the args that run the probe inside the sandbox.
func probe(args ...string) []string { return testenv.ProbeArgs(args...) }
