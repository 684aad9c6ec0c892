// Command bulwark-init is the runtime's setup helper: bulwark-runc, bulwark and bulwarkd execute
// it, from beside their own binary, as every container's setup child (and every exec's), in
// place of re-executing themselves. It links only the setup child's package (sandbox/setup), so it
// starts in a fraction of their time; it refuses a runtime of another build (see
// sandbox/setup/build.go).
package main

import (
	"fmt"
	"os"

	"bulwark.dev/bulwark/sandbox/setup"
)

func main() {
	// The runtime's setup modes never return.
	setup.Init()
	fmt.Fprintln(os.Stderr, "bulwark-init: the runtime's setup helper; it does nothing when run by hand")
	os.Exit(2)
}
