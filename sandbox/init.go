package sandbox

import "bulwark.dev/bulwark/sandbox/setup"

// Init runs the container-side setup when the binary was re-executed by the runtime as a setup
// child (see setup.Init); otherwise it returns at once. Programs using this package must call it
// first thing in main (tests: TestMain): unstamped builds are their own setup children.
func Init() { setup.Init() }
