// Command getppid measures the cost of one cheap system call as seen by a sandboxed process: it calls
// getppid(2) N times (first argument, default 1,000,000) and prints the mean nanoseconds per call.
// Every seccomp filter stacked on the process runs on each call, so comparing this figure between
// runtimes compares their filters' overhead. Static (CGO_ENABLED=0) so it runs in a busybox rootfs.
package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

func main() {
	n := 1_000_000
	if len(os.Args) > 1 {
		v, err := strconv.Atoi(os.Args[1])
		if err != nil || v <= 0 {
			fmt.Fprintln(os.Stderr, "usage: getppid [iterations]")
			os.Exit(2)
		}
		n = v
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		// RawSyscall: no scheduler bookkeeping, so the figure is the kernel entry plus the filters.
		syscall.RawSyscall(syscall.SYS_GETPPID, 0, 0, 0)
	}
	fmt.Printf("%.1f\n", float64(time.Since(start).Nanoseconds())/float64(n))
}
