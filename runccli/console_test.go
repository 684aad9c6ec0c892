package runccli

import (
	"os"
	"syscall"
	"testing"
	"time"
)

func TestForwardSignals(t *testing.T) {
	sigc := make(chan os.Signal, 4)
	done := make(chan struct{})
	got := make(chan syscall.Signal, 4)
	go func() {
		forwardSignals(sigc, done, nil, func(s syscall.Signal) error { got <- s; return nil })
	}()
	sigc <- syscall.SIGCHLD // ours, not forwarded
	sigc <- syscall.SIGWINCH
	sigc <- syscall.SIGTERM
	select {
	case s := <-got:
		if s != syscall.SIGTERM {
			t.Errorf("forwarded %v first, want SIGTERM", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("SIGTERM not forwarded")
	}
	close(done)
}
