package engine

import (
	"testing"
	"time"
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
