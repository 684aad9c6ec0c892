// Package memfdnoexec makes every memfd in a container's pid namespace non-executable
// (vm.memfd_noexec = 2: memfd_create seals new memfds against execution and refuses MFD_EXEC).
// The write must come from host root inside that pid namespace: the runtime makes a short-lived
// clone of one of its threads there (memfdnoexec.c), with no exec of any binary.
package memfdnoexec

// #cgo CFLAGS: -Wall -Werror -std=gnu11
// #include "memfdnoexec.h"
import "C"

import (
	"fmt"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// Sysctl is the per pid namespace knob (Linux 6.3 and later).
const Sysctl = "/proc/sys/vm/memfd_noexec"

// Supported reports whether the kernel has the per pid namespace vm.memfd_noexec.
func Supported() bool {
	_, err := os.Stat(Sysctl)
	return err == nil
}

// Raise sets vm.memfd_noexec to 2 in the pid namespace of pid. The value can only be raised
// afterwards, and only by host root: the container can never lower it.
func Raise(pid int) error {
	fail := func(what string, err error) error {
		return fmt.Errorf("raise vm.memfd_noexec in pid %d's pid namespace: %s: %w", pid, what, err)
	}
	// Its pid namespace is joined through a pidfd (setns takes one since Linux 5.8), not
	// /proc/PID/ns/pid: that lookup would leave two proc inodes and dentries in the host's caches
	// for as long as the process lives, and pid is the container's init (issue 14).
	pidns, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fail("pidfd_open", err)
	}
	defer unix.Close(pidns)
	ownns, err := unix.Open("/proc/thread-self/ns/pid", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail("open own pid namespace", err)
	}
	defer unix.Close(ownns)
	// Opened by the runtime, in its own pid namespace: the file the value is written through.
	// The kernel applies the write to the writer's pid namespace, not the one /proc belongs to.
	sysctl, err := unix.Open(Sysctl, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail("open "+Sysctl, err)
	}
	defer unix.Close(sysctl)

	// The thread joins the pid namespace for its children: no other goroutine may run on it
	// until it is back in its own, and it is discarded (never unlocked) if it could not go back.
	runtime.LockOSThread()
	var restored C.int
	errno := C.bulwark_raise_memfd_noexec(C.int(pidns), C.int(ownns), C.int(sysctl), &restored)
	if restored != 0 {
		runtime.UnlockOSThread()
	}
	if errno != 0 {
		return fail("write", syscall.Errno(errno))
	}
	return nil
}
