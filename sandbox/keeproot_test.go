package sandbox

import (
	"io"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestHeldRootReleasedAtExit: the held root is released once the process it waits for exits,
// not before, and not never (a pipe's write end stands for the root: its reader sees EOF once
// every copy is closed).
func TestHeldRootReleasedAtExit(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	child := exec.Command("sleep", "0.3")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	held := holdRoot(int(w.Fd()))
	if held.fd < 0 {
		t.Fatal("the root was not held")
	}
	w.Close()
	held.untilExit(child.Process.Pid)
	eof := make(chan time.Time, 1)
	go func() {
		io.Copy(io.Discard, r)
		eof <- time.Now()
	}()
	select {
	case <-eof:
		t.Fatal("the root was released while the process ran")
	case <-time.After(100 * time.Millisecond):
	}
	select {
	case <-eof:
	case <-time.After(5 * time.Second):
		t.Fatal("the root was not released when the process exited")
	}
	// The exit is collected by its parent, as init's is by Wait.
	if err := child.Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestHeldRootDropped: a create that fails drops the root it held.
func TestHeldRootDropped(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	held := holdRoot(int(w.Fd()))
	w.Close()
	held.drop()
	done := make(chan struct{})
	go func() {
		io.Copy(io.Discard, r)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the root was not dropped")
	}
}
