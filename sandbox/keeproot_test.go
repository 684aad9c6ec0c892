package sandbox

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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

// TestHeldMountNamespace: once init runs, its mount namespace is held too (so its exit does not
// unmount the container's mounts on the path the wait sees), and released when it exits.
func TestHeldMountNamespace(t *testing.T) {
	child := exec.Command("sleep", "0.3")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", child.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if pfd, err := unix.PidfdOpen(child.Process.Pid, 0); err == nil {
		nsfd, err := unix.IoctlRetInt(pfd, pidfdGetMntNamespace)
		unix.Close(pfd)
		if err != nil {
			t.Skipf("no PIDFD_GET_MNT_NAMESPACE on this kernel: %v", err)
		}
		unix.Close(nsfd)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	held := holdRoot(int(w.Fd()))
	w.Close()
	before := fdsLinkingTo(t, ns)
	held.untilExit(child.Process.Pid)
	if got := fdsLinkingTo(t, ns); got != before+1 {
		t.Fatalf("%d descriptors of %s after untilExit, want %d", got, ns, before+1)
	}
	if err := child.Wait(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for fdsLinkingTo(t, ns) != before {
		if time.Now().After(deadline) {
			t.Fatal("the mount namespace was not released when the process exited")
		}
		time.Sleep(time.Millisecond)
	}
}

// fdsLinkingTo counts this process's descriptors whose /proc link is target.
func fdsLinkingTo(t *testing.T, target string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && l == target {
			n++
		}
	}
	return n
}
