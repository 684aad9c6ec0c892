package sandbox

import (
	"fmt"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/sandbox/internal/cgroups"
)

// startInCgroup starts cmd so that the child is in cg from its first instruction, without the
// usual migration afterwards. Moving a process (writing a pid to cgroup.procs) takes the kernel's
// global cgroup_threadgroup_rwsem for writing, which waits for an RCU grace period — ~10 ms here,
// the largest single cost of a start.
//   - cgroup v2: clone3(CLONE_INTO_CGROUP) places the child directly.
//   - cgroup v1: a dedicated OS thread moves only itself ("0" into each hierarchy's tasks file,
//     which the kernel does without the global lock) and forks the child, which inherits the
//     thread's cgroups. The thread is never unlocked, so it dies with its goroutine and nothing
//     else ever runs in the container's cgroup.
//   - hybrid (v1 plus a unified hierarchy): both; clone3 places the child in the unified leaf
//     and keeps the forking thread's v1 cgroups.
//
// onThread, if set, runs first on the thread that forks (see startChild).
func startInCgroup(cmd *setupProc, cg cgroups.Manager, onThread func() error) error {
	var unified string
	hasV1 := false
	for _, h := range cg.Hierarchies() {
		if h.Unified {
			unified = h.Dir
		} else {
			hasV1 = true
		}
	}
	if unified != "" {
		fd, err := unix.Open(unified, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open cgroup %s: %w", unified, err)
		}
		defer unix.Close(fd)
		if cmd.attr == nil {
			cmd.attr = &syscall.SysProcAttr{}
		}
		cmd.attr.UseCgroupFD = true
		cmd.attr.CgroupFD = fd
	}
	if !hasV1 && onThread == nil {
		return cmd.start()
	}
	return onDisposableThread(func() error {
		if onThread != nil {
			if err := onThread(); err != nil {
				return err
			}
		}
		if err := cg.JoinV1(); err != nil {
			return err
		}
		return cmd.start()
	})
}

// onDisposableThread runs fn on an OS thread that terminates when fn returns. A goroutine that
// exits while locked to its thread takes the thread with it — except the main thread, which the
// Go runtime keeps (parked) forever: if the scheduler hands us the main thread, hold it so that
// a nested goroutine must run elsewhere.
func onDisposableThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked on the thread fn runs on
		if unix.Gettid() == unix.Getpid() {
			errc <- onDisposableThread(fn)
			runtime.UnlockOSThread()
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// cgroupExists reports whether any of cg's directories is already there.
func cgroupExists(cg cgroups.Manager) bool {
	for _, h := range cg.Hierarchies() {
		if _, err := os.Stat(h.Dir); err == nil {
			return true
		}
	}
	return false
}
