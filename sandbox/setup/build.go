package setup

import (
	"fmt"
	"os"
)

// buildID identifies this binary's build: `make build` stamps every binary with a digest of the
// sources (-ldflags -X bulwark.dev/bulwark/sandbox/setup.buildID=...). Unstamped (go build, go test),
// setup children are the runtime binary itself.
var buildID string

// BuildID is this binary's build stamp (empty when unstamped).
func BuildID() string { return buildID }

// HelperName is the setup helper's file name: the runtime looks for it beside its own binary.
const HelperName = "bulwark-init"

// EnvSetup marks a re-executed runtime as a setup child; its value is the mode ("init", "exec").
const EnvSetup = "_BULWARK_SETUP"

// EnvBuild carries the runtime's buildID to its setup child, which sets up nothing for another
// build: the setup protocol is one build's.
const EnvBuild = "_BULWARK_BUILD"

// checkBuild is the setup child's refusal of a runtime of another build.
func checkBuild() *InitError {
	if got := os.Getenv(EnvBuild); got != buildID {
		return stepError("protocol", "build", "", fmt.Errorf("%s of build %q cannot set up a container for a runtime of build %q: install the binaries of one build together", HelperName, buildID, got))
	}
	return nil
}
