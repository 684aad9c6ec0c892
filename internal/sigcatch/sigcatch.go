// Package sigcatch catches asynchronous signals with a small C handler that writes each one's
// number to a pipe, relayed to a channel as os/signal would deliver it. os/signal enables each
// signal with a round trip to the Go runtime's signal-mask thread, started for it: 0.4-1.5 ms of
// wall time for the seven signals `bulwark run` relays (a run waited up to 0.4 ms of it), about
// 1 ms of CPU for bulwark-runc's 49 — one sigaction each here. bulwark's and bulwark-runc's
// foreground runs and execs catch what they relay to the container's process with it.
package sigcatch

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
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Reserved reports whether s is a signal Catch refuses: SIGKILL and SIGSTOP (no handler), the
// synchronous ones (the Go runtime handles them itself: a fault in Go code is a panic, and a C
// handler would return into the faulting instruction), and those the Go runtime and the C
// library keep (SIGURG, SIGPROF, SIGCHLD, SIGPIPE, 32-34).
func Reserved(s syscall.Signal) bool {
	switch s {
	case unix.SIGKILL, unix.SIGSTOP, unix.SIGILL, unix.SIGTRAP, unix.SIGBUS, unix.SIGFPE, unix.SIGSEGV, unix.SIGSYS,
		unix.SIGURG, unix.SIGPROF, unix.SIGCHLD, unix.SIGPIPE, 32, 33, 34:
		return true
	}
	return s < 1 || s > 64
}

var (
	mu     sync.Mutex // guards caught: the handler writes to one pipe, installed once
	caught bool
)

// Catch installs the handler for sigs and relays what it catches to sigc (a full channel drops
// a signal, as os/signal does). It refuses a Reserved signal, and a second call. It is never
// undone: the pipe's read end is a non-blocking file in the Go runtime's poller (no thread waits
// on it); both ends are close-on-exec and stay open until the process ends.
func Catch(sigc chan<- os.Signal, sigs []syscall.Signal) error {
	if len(sigs) == 0 {
		return nil
	}
	cs := make([]C.int, len(sigs))
	for i, s := range sigs {
		if Reserved(s) {
			return fmt.Errorf("catch signal %d: reserved to the Go runtime or the kernel", int(s))
		}
		cs[i] = C.int(s)
	}
	mu.Lock()
	defer mu.Unlock()
	if caught {
		return errors.New("catch signals: already caught in this process")
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return fmt.Errorf("catch signals: pipe: %w", err)
	}
	r := os.NewFile(uintptr(p[0]), "signals")
	var errno C.int
	if s := C.sigcatch(C.int(p[1]), &cs[0], C.int(len(cs)), &errno); s != 0 {
		return fmt.Errorf("catch signal %d: %w", int(s), syscall.Errno(errno))
	}
	caught = true
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
