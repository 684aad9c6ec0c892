// Command bulwark-runc is Bulwark's runc-compatible command line (package runccli), so containerd's
// runc shim and Docker's --add-runtime can use Bulwark as their runtime.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	"bulwark.dev/bulwark/runccli"
)

// The go:debug lines: a command that lives milliseconds has no use for a GOMAXPROCS that follows
// its cgroup's CPU limit. With it, the Go runtime reads the limit again on sysmon's first tick
// and starts a goroutine to read it every second. (Go 1.26 reads it once at start-up whatever is
// set, to count the setting's use.)

func main() { runccli.Main() }
