package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"bulwark.dev/bulwark/supervisor"
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
	dir := supervisorDir(root)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := supervisor.Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
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
