package engine

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// A detached container's network is set up in the network namespace of the client that ran
// it (the host it publishes on), not in the supervisor's, which may be another (the client ran
// in a namespace of its own; the supervisor was started from elsewhere). Every request carries
// a descriptor of the client's namespace (clientNetns, the first descriptor of the message);
// the worker starts the helper that creates the container from a thread that entered it (the
// helper, the CNI plugins and the network's resolver it starts all live there), and records
// the container's exit from such a thread too (--rm detaches its network there). The worker
// keeps the descriptor while it supervises the container (in its reaper's store: a worker
// started again has it), for a restart by policy and the exit.

// clientNetns opens the calling thread's network namespace.
func clientNetns() (*os.File, error) {
	f, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, fmt.Errorf("open this process's network namespace: %w", err)
	}
	return f, nil
}

// checkNetns refuses a descriptor that is not a network namespace.
func checkNetns(f *os.File) error {
	if f == nil {
		return errors.New("supervisor: the request carries no network namespace")
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("supervisor: the request's network namespace: %w", err)
	}
	var kind int
	cerr := rc.Control(func(fd uintptr) { kind, err = unix.IoctlRetInt(int(fd), unix.NS_GET_NSTYPE) })
	if err = errors.Join(cerr, err); err != nil || kind != unix.CLONE_NEWNET {
		return fmt.Errorf("supervisor: the request's first descriptor is not a network namespace (%v)", err)
	}
	return nil
}

// inNetns runs fn on an OS thread that entered the network namespace ns (nil: on this one).
// What fn starts as processes lives in that namespace; goroutines it starts do not. The thread
// is discarded afterwards (never returned to the scheduler in another namespace).
func inNetns(ns *os.File, fn func() error) error {
	if ns == nil {
		return fn()
	}
	done := make(chan error, 1)
	go func() {
		// No UnlockOSThread: the thread exits with this goroutine.
		runtime.LockOSThread()
		rc, err := ns.SyscallConn()
		if err == nil {
			cerr := rc.Control(func(fd uintptr) { err = unix.Setns(int(fd), unix.CLONE_NEWNET) })
			err = errors.Join(cerr, err)
		}
		if err != nil {
			done <- fmt.Errorf("enter the client's network namespace: %w", err)
			return
		}
		done <- fn()
	}()
	return <-done
}

// dupFile is a copy of f's descriptor that the caller owns.
func dupFile(f *os.File) (*os.File, error) {
	if f == nil {
		return nil, nil
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var fd int
	cerr := rc.Control(func(p uintptr) { fd, err = unix.FcntlInt(p, unix.F_DUPFD_CLOEXEC, 0) })
	if err = errors.Join(cerr, err); err != nil {
		return nil, fmt.Errorf("dup %s: %w", f.Name(), err)
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}
