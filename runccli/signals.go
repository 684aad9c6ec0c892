package runccli

// A foreground run or exec relays the signals it receives to the container's process, as runc's
// signal proxy does. Only the synchronous (fault) signals go through os/signal; every other one
// reaches a small C handler (sigcatch below): os/signal enables each signal with a round trip to
// the Go runtime's signal-mask thread, which for all of them cost about 1 ms of CPU (more under
// load, on the two cores that create the container) and kept the command waiting before its
// container could be made, against one sigaction each here.

/*
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static int sigcatch_fd = -1;

// sigcatch_handler writes the signal's number to the pipe the CLI reads; a full pipe drops it,
// as a full channel does for os/signal. Only async-signal-safe calls; errno is kept.
static void sigcatch_handler(int sig) {
	int saved = errno;
	unsigned char b = (unsigned char)sig;
	ssize_t n = write(sigcatch_fd, &b, 1);
	(void)n;
	errno = saved;
}

// sigcatch installs the handler for the n signals in sigs, writing to fd. SA_ONSTACK: a signal
// that lands on a thread running Go code is handled on that thread's signal stack, as the Go
// runtime requires of every handler not its own. It returns 0, or the failing signal and errno.
static int sigcatch(int fd, const int *sigs, int n, int *err) {
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = sigcatch_handler;
	sa.sa_flags = SA_ONSTACK | SA_RESTART;
	sigfillset(&sa.sa_mask);
	sigcatch_fd = fd;
	for (int i = 0; i < n; i++) {
		if (sigaction(sigs[i], &sa, NULL) != 0) {
			*err = errno;
			return sigs[i];
		}
	}
	return 0;
}
*/
import "C"

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/console"
)

// faultSignals are the synchronous signals: the Go runtime handles them itself (a fault in Go
// code is a panic, and a C handler would return into the faulting instruction), so they are
// caught through os/signal, which hands the program those sent by kill.
var faultSignals = []os.Signal{unix.SIGILL, unix.SIGTRAP, unix.SIGBUS, unix.SIGFPE, unix.SIGSEGV, unix.SIGSYS}

// caughtSignals are the signals sigcatch catches: every signal but faultSignals, SIGKILL and
// SIGSTOP (no handler), the ones forwardSignals drops (SIGCHLD, SIGURG, SIGPIPE), the Go
// runtime's SIGPROF and 32-34, which the C library and the Go runtime keep for themselves
// (os/signal never delivered these either).
func caughtSignals() []C.int {
	var out []C.int
	for s := unix.Signal(1); s <= 64; s++ {
		switch s {
		case unix.SIGKILL, unix.SIGSTOP, unix.SIGCHLD, unix.SIGURG, unix.SIGPIPE, unix.SIGPROF, 32, 33, 34:
			continue
		}
		fault := false
		for _, f := range faultSignals {
			fault = fault || f == s
		}
		if !fault {
			out = append(out, C.int(s))
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
		err := catchOthers(sigc)
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

// catchOthers installs sigcatch for caughtSignals and relays what it writes to sigc. The pipe's
// read end is a non-blocking file in the Go runtime's poller (no thread waits on it); both ends
// are close-on-exec and stay open until the process ends.
func catchOthers(sigc chan<- os.Signal) error {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return fmt.Errorf("catch signals: pipe: %w", err)
	}
	r := os.NewFile(uintptr(p[0]), "signals")
	sigs := caughtSignals()
	var errno C.int
	if s := C.sigcatch(C.int(p[1]), &sigs[0], C.int(len(sigs)), &errno); s != 0 {
		return fmt.Errorf("catch signal %d: %w", int(s), syscall.Errno(errno))
	}
	go func() {
		b := make([]byte, 64)
		for {
			n, err := r.Read(b)
			if err != nil {
				return
			}
			for _, s := range b[:n] {
				select {
				case sigc <- syscall.Signal(s):
				default: // as os/signal: a full channel drops the signal
				}
			}
		}
	}()
	return nil
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
