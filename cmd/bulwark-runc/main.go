// Command bulwark-runc is Bulwark's runc-compatible command line (package runccli), so containerd's
// runc shim and Docker's --add-runtime can use Bulwark as their runtime.
package main

import "bulwark.dev/bulwark/runccli"

func main() { runccli.Main() }
