// Package memfdnoexec makes every memfd in a container's pid namespace non-executable
// (vm.memfd_noexec = 2: memfd_create seals new memfds against execution and refuses MFD_EXEC).
// The write must come from host root inside that pid namespace, so the runtime re-executes
// itself with a marker variable and a C constructor does it before the Go runtime starts.
package memfdnoexec

// #cgo CFLAGS: -Wall -Werror -std=gnu11
import "C"

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
)

// Env names the variable holding the pid whose pid namespace the re-executed runtime raises.
const Env = "_BULWARK_MEMFD_NOEXEC"

// Sysctl is the per pid namespace knob (Linux 6.3 and later).
const Sysctl = "/proc/sys/vm/memfd_noexec"

// Supported reports whether the kernel has the per pid namespace vm.memfd_noexec.
func Supported() bool {
	_, err := os.Stat(Sysctl)
	return err == nil
}

// Raise sets vm.memfd_noexec to 2 in the pid namespace of pid by running self (an executable
// handle on the running binary, which links this package) with Env set. The value can only be
// raised afterwards, and only by host root: the container can never lower it.
func Raise(self *os.File, pid int) error {
	cmd := &exec.Cmd{
		Path:       "/proc/self/fd/3",
		Args:       []string{"bulwark-memfd-noexec"},
		Env:        []string{Env + "=" + strconv.Itoa(pid)},
		ExtraFiles: []*os.File{self},
	}
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() > 0 && exit.ExitCode() < 125 {
		return fmt.Errorf("raise vm.memfd_noexec in pid %d's pid namespace: %w", pid, syscall.Errno(exit.ExitCode()))
	}
	if err != nil {
		return fmt.Errorf("raise vm.memfd_noexec in pid %d's pid namespace: %w", pid, err)
	}
	return nil
}
