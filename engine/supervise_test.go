package engine

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bulwark.dev/bulwark/supervisor"
	"golang.org/x/sys/unix"
)

// TestTracksWaitsForRecordedExit: a start that comes once a container's exit is in its record
// (as restart waits for) does not find it still supervised while the worker drops it; it waits
// for that. Before, the start was refused as "running" in that window: TestDockerCLI's restart
// failed under load.
func TestTracksWaitsForRecordedExit(t *testing.T) {
	running := &Meta{ID: "up"}
	w := &worker{ctrs: map[string]*supervised{running.ID: {id: running.ID, dropped: make(chan struct{})}}}
	if !w.tracks(running) {
		t.Error("a supervised container with no exit recorded is not tracked")
	}
	exited := &Meta{ID: "c1", Exit: &ExitInfo{Code: 137}}
	s := &supervised{id: exited.ID, dropped: make(chan struct{})}
	w.ctrs[exited.ID] = s
	done := make(chan bool, 1)
	go func() { done <- w.tracks(exited) }()
	select {
	case got := <-done:
		t.Fatalf("tracks answered %v while the exited container was still being dropped", got)
	case <-time.After(100 * time.Millisecond):
	}
	w.mu.Lock()
	delete(w.ctrs, exited.ID)
	w.mu.Unlock()
	close(s.dropped)
	if <-done {
		t.Error("an exited container is still tracked once finish dropped it")
	}
	if w.tracks(&Meta{ID: "other"}) {
		t.Error("a container the worker never had is tracked")
	}
}

// TestWatchAskedAgainUnanswered: a watch the supervisor dropped unanswered (it was leaving,
// idle, as the client connected: its listener closed with the connection queued) is asked
// again, of the supervisor listening next. The run failed: "the supervisor cannot watch this
// run".
func TestWatchAskedAgainUnanswered(t *testing.T) {
	root := t.TempDir()
	_, ln := listenSupervisor(t, root)
	defer ln.Close()
	served := make(chan error, 1)
	go func() {
		c, err := ln.AcceptUnix()
		if err != nil {
			served <- err
			return
		}
		c.Close() // the leaving supervisor's dropped connection
		if c, err = ln.AcceptUnix(); err != nil {
			served <- err
			return
		}
		defer c.Close()
		var req supRequest
		files, err := supervisor.Recv(c, &req)
		for _, f := range files {
			f.Close()
		}
		if err == nil && (req.Op != opWatch || req.ID != "c1") {
			err = fmt.Errorf("request %+v", req)
		}
		if err == nil {
			err = supervisor.Send(c, &monitorStatus{ID: req.ID, RunRoot: filepath.Join(root, "run")})
		}
		served <- err
	}()
	e := &Engine{cfg: Config{Root: root, RunRoot: filepath.Join(root, "run"), Monitor: []string{"/bin/false"}}}
	if err := e.superviseForeground("c1"); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if !e.runRootTended.Load() {
		t.Error("the answer naming this run root does not leave its tidying to the supervisor")
	}
}

// TestLeavingWorkerAnswersQueuedClient: a request a client made as the worker left, idle — its
// connection queued on the listener, not taken yet — is answered, not reset: closing the
// listener at once reset it, and a detached run failed ("supervisor did not answer") with no
// way to ask again (its plan may have started). A client coming after finds no socket and
// waits for the next supervisor (supervisor.Dial).
func TestLeavingWorkerAnswersQueuedClient(t *testing.T) {
	root := t.TempDir()
	dir, ln := listenSupervisor(t, root)
	w := &worker{e: &Engine{cfg: Config{Root: root}}, dir: dir, reaper: os.Getppid(),
		ctrs: map[string]*supervised{}, watches: map[string]bool{}, wake: make(chan struct{})}
	c, err := supervisor.Dial(dir, nil) // queued: nothing accepts yet
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	netns, err := clientNetns()
	if err != nil {
		t.Fatal(err)
	}
	defer netns.Close()
	if err := supervisor.Send(c, supRequest{Op: opRun, Plan: []byte(`{}`)}, netns); err != nil {
		t.Fatal(err)
	}
	w.leave(ln) // the idle worker leaves with the connection queued
	if late, err := supervisor.Dial(dir, nil); err == nil {
		late.Close()
		t.Error("a client reached the leaving worker after it left")
	}
	accepted := make(chan struct{})
	go func() {
		w.accept(ln)
		close(accepted)
	}()
	var st monitorStatus
	if _, err := supervisor.Recv(c, &st); err != nil {
		t.Fatalf("the queued request was dropped: %v", err)
	}
	if !strings.Contains(st.Error, "not a plan") {
		t.Errorf("answer %+v, want the refusal of the plan", st)
	}
	select {
	case <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("the leaving worker still takes clients")
	}
	if w.active() {
		t.Error("the worker has something to supervise after a refused run")
	}
}

// TestRequestNotTakenAskedAgain: a request the supervisor let go unread (it left or died with the
// connection open, the request in it) is asked again, of the supervisor listening next, whatever
// it is — a detached run failed ("supervisor did not answer") though nothing of it was done; one
// the supervisor read and did not answer is not asked again (a detached run's plan may have
// started).
func TestRequestNotTakenAskedAgain(t *testing.T) {
	for _, read := range []bool{false, true} {
		root := t.TempDir()
		_, ln := listenSupervisor(t, root)
		served := make(chan error, 1)
		go func() {
			c, err := ln.AcceptUnix()
			if err != nil {
				served <- err
				return
			}
			if read {
				files, err := supervisor.Recv(c, &supRequest{})
				closeFiles(files...)
				c.Close() // read, never answered
				served <- err
				return
			}
			// Closed with the request in it, unread.
			rc, err := c.SyscallConn()
			if err == nil {
				rc.Read(func(fd uintptr) bool {
					_, _, err := unix.Recvfrom(int(fd), make([]byte, 1), unix.MSG_PEEK)
					return err != unix.EAGAIN
				})
			}
			c.Close()
			if c, err = ln.AcceptUnix(); err != nil {
				served <- err
				return
			}
			defer c.Close()
			var req supRequest
			files, err := supervisor.Recv(c, &req)
			closeFiles(files...)
			if err == nil && req.Op != opRun {
				err = fmt.Errorf("request %+v", req)
			}
			if err == nil {
				err = supervisor.Send(c, &monitorStatus{ID: "c1"})
			}
			served <- err
		}()
		st, err := ask(root, []string{"/bin/false"}, supRequest{Op: opRun, Plan: []byte(`{"id":"c1"}`)})
		if !read && err != nil {
			ln.Close() // the second connection never comes
			t.Fatalf("a run not read: %v; want asked again and answered", err)
		}
		if serr := <-served; serr != nil {
			t.Fatal(serr)
		}
		if read {
			if err == nil || strings.Contains(err.Error(), "reset") || strings.Contains(err.Error(), "broken pipe") {
				t.Errorf("a run read and not answered: %v, want unanswered", err)
			}
			ln.SetDeadline(time.Now().Add(200 * time.Millisecond))
			if c, err := ln.AcceptUnix(); err == nil {
				c.Close()
				t.Error("a run read and not answered was asked again")
			}
		} else if st.ID != "c1" {
			t.Errorf("a run not read, asked again: answer %+v", st)
		}
		ln.Close()
	}
}

// listenSupervisor makes root's supervisor directory and listens there as a supervisor would.
func listenSupervisor(t *testing.T, root string) (string, *net.UnixListener) {
	t.Helper()
	dir := supervisorDir(root)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := supervisor.Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, ln
}
