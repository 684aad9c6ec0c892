package sigcatch

import (
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestCatch: a reserved signal is refused before anything is installed; a caught one is relayed
// to the channel; a second installation is refused.
func TestCatch(t *testing.T) {
	sigc := make(chan os.Signal, 4)
	for _, s := range []syscall.Signal{unix.SIGKILL, unix.SIGSEGV, unix.SIGURG, unix.SIGCHLD, 33, 65} {
		if err := Catch(sigc, []syscall.Signal{unix.SIGUSR1, s}); err == nil {
			t.Fatalf("signal %d caught", int(s))
		}
	}
	if err := Catch(sigc, []syscall.Signal{unix.SIGUSR1, unix.SIGWINCH}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []syscall.Signal{unix.SIGUSR1, unix.SIGWINCH} {
		if err := unix.Kill(os.Getpid(), s); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-sigc:
			if got != s {
				t.Errorf("sent %v, relayed %v", s, got)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%v not relayed", s)
		}
	}
	if err := Catch(sigc, []syscall.Signal{unix.SIGUSR2}); err == nil {
		t.Error("a second installation was accepted")
	}
}
