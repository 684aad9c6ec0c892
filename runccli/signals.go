package runccli

// A foreground run or exec relays the signals it receives to the container's process, as runc's
// signal proxy does. Only the synchronous (fault) signals go through os/signal; every other one
// reaches a small C handler (internal/sigcatch): os/signal enables each signal with a round trip
// to the Go runtime's signal-mask thread, which for all of them cost about 1 ms of CPU (more
// under load, on the two cores that create the container) and kept the command waiting before
// its container could be made, against one sigaction each there.

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/console"
	"bulwark.dev/bulwark/internal/sigcatch"
)

// faultSignals are the synchronous signals: the Go runtime handles them itself (a fault in Go
// code is a panic, and a C handler would return into the faulting instruction), so they are
// caught through os/signal, which hands the program those sent by kill.
var faultSignals = []os.Signal{unix.SIGILL, unix.SIGTRAP, unix.SIGBUS, unix.SIGFPE, unix.SIGSEGV, unix.SIGSYS}

// caughtSignals are the signals sigcatch catches: every one it does not leave to the Go runtime
// or the kernel (sigcatch.Reserved: faultSignals, which os/signal catches; SIGCHLD, SIGURG and
// SIGPIPE, which forwardSignals would drop; SIGPROF and 32-34, which os/signal never delivered).
func caughtSignals() []syscall.Signal {
	var out []syscall.Signal
	for s := syscall.Signal(1); s <= 64; s++ {
		if !sigcatch.Reserved(s) {
			out = append(out, s)
		}
	}
	return out
}

// catchSignals starts catching every signal into sigc, beside the command's own work, and
// returns a channel that yields once they are caught, or why they could not be. The command
// waits for it before anything exists that a signal would have to reach: a signal that comes
// earlier has its default effect (the command ends before its container exists), and none ends
// or stops it once its container exists. It is never undone (signal.Stop costs as much again as
// Notify): the process ends once the container is deleted.
func catchSignals(sigc chan<- os.Signal) <-chan error {
	caught := make(chan error, 1)
	go func() {
		err := sigcatch.Catch(sigc, caughtSignals())
		if err == nil {
			signal.Notify(sigc, faultSignals...)
		}
		caught <- err
	}()
	return caught
}

// waitCaught waits for catchSignals (at once without it: a detached command).
func waitCaught(caught <-chan error) error {
	if caught == nil {
		return nil
	}
	return <-caught
}

// forwardSignals relays what the CLI receives to the container's process, as runc's signal proxy does
// for foreground run/exec, until done is closed.
func forwardSignals(sigc <-chan os.Signal, done <-chan struct{}, proxy *console.Proxy, send func(syscall.Signal) error) {
	for {
		select {
		case <-done:
			return
		case s := <-sigc:
			sig, ok := s.(syscall.Signal)
			if !ok {
				continue
			}
			switch sig {
			case unix.SIGCHLD, unix.SIGURG, unix.SIGPIPE:
				// SIGCHLD is ours, SIGURG is the Go scheduler's preemption signal.
			case unix.SIGWINCH:
				if proxy != nil {
					proxy.Resize()
				}
			default:
				_ = send(sig)
			}
		}
	}
}
