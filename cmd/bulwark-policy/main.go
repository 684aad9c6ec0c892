// Command bulwark-policy is bulwark-runc's policy evaluator: bulwark-runc executes it, from beside
// its own binary, only for a request its decision cache cannot answer, and talks to it on its
// standard input and output (engine/internal/evalproto). It holds OPA, so that the
// runtime binary, started for every create, start, exec and delete, does not; it refuses a
// runtime of another build.
package main

import (
	"os"

	"bulwark.dev/bulwark/engine/runcgate/evaluator"
)

func main() { os.Exit(evaluator.Main()) }
