// Command bulwark-seccomp is the runtime's seccomp compiler, executed on a cache miss: see
// package sandbox/seccompc.
package main

import (
	"os"

	"bulwark.dev/bulwark/sandbox/seccompc"
)

func main() { os.Exit(seccompc.Main()) }
