package runccli

// A foreground run or exec relays the signals it receives to the container's process, as runc's
// signal proxy does. The signals whose default would end or stop this process go through
// os/signal; every other one reaches a small C handler (sigcatch below): os/signal enables each
// signal with a round trip to the Go runtime's signal-mask thread, which for those 40 signals
// cost about 1 ms of CPU (more under load, on the two cores that create the container), against
// one sigaction each here.

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

// signalsCaught says how far catchSignals has got: fatal is closed once the signals that would
// end or stop this process are caught; all yields once every signal is, or why not.
type signalsCaught struct {
	fatal <-chan struct{}
	all   <-chan error
}

// waitAll waits until every signal is caught (at once without catchSignals: a detached command).
func (s signalsCaught) waitAll() error {
	if s.all == nil {
		return nil
	}
	return <-s.all
}

// endingSignals are the signals whose default effect on a Go program is to end it (SIGHUP, SIGINT,
// SIGTERM; SIGQUIT, SIGABRT and, sent by kill, the synchronous ones with a stack dump) or to stop
// it (SIGTSTP, SIGTTIN, SIGTTOU); the runtime catches every other signal and drops it until the
// program asks for it (os/signal), except signals 32 and 34, which end a Go program whatever it
// asks for (the runtime leaves them to the C library). TestEndingSignals holds this list to what
// the runtime does.
var endingSignals = []os.Signal{unix.SIGHUP, unix.SIGINT, unix.SIGTERM, unix.SIGQUIT, unix.SIGABRT,
	unix.SIGILL, unix.SIGTRAP, unix.SIGBUS, unix.SIGFPE, unix.SIGSEGV, unix.SIGSTKFLT, unix.SIGSYS,
	unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU}

// otherSignals are the signals relayed besides endingSignals, caught by sigcatch: every signal
// but those, SIGKILL and SIGSTOP (no handler), the ones forwardSignals drops (SIGCHLD, SIGURG,
// SIGPIPE), the Go runtime's SIGPROF and 32-34, which the C library and the Go runtime keep for
// themselves (os/signal never delivered these either).
func otherSignals() []C.int {
	var out []C.int
	for s := unix.Signal(1); s <= 64; s++ {
		switch s {
		case unix.SIGKILL, unix.SIGSTOP, unix.SIGCHLD, unix.SIGURG, unix.SIGPIPE, unix.SIGPROF, 32, 33, 34:
			continue
		}
		ending := false
		for _, e := range endingSignals {
			ending = ending || e == s
		}
		if !ending {
			out = append(out, C.int(s))
		}
	}
	return out
}

// catchSignals starts catching every signal into sigc, beside the command's own work. It
// catches the ending signals first: the command waits for those (fatal) before anything exists
// that a signal would have to reach, so a signal that comes earlier has its default effect
// (the command ends before its container exists) and none ends it once the container exists.
// The rest, which until then are dropped, as they would be before any Notify, are caught while
// the container is created; run waits for them (all) before its process starts, exec before it
// execs. It is never undone (signal.Stop costs as much again): the process ends once the
// container is deleted.
func catchSignals(sigc chan<- os.Signal) signalsCaught {
	fatal, all := make(chan struct{}), make(chan error, 1)
	go func() {
		signal.Notify(sigc, endingSignals...)
		close(fatal)
		all <- catchOthers(sigc)
	}()
	return signalsCaught{fatal, all}
}

// catchOthers installs sigcatch for otherSignals and relays what it writes to sigc. The pipe's
// read end is a non-blocking file in the Go runtime's poller (no thread waits on it); both ends
// are close-on-exec and stay open until the process ends.
func catchOthers(sigc chan<- os.Signal) error {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return fmt.Errorf("catch signals: pipe: %w", err)
	}
	r := os.NewFile(uintptr(p[0]), "signals")
	sigs := otherSignals()
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
