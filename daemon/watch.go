package daemon

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"

	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/errdefs"
)

// A watcher follows each started container until it exits: it records the exit status in the
// daemon's record (so a waiting client gets it even after an auto-remove), wakes the clients
// waiting on it and, for --rm, removes the container. The engine's record is polled (the
// monitor, the engine's supervisor of a detached container, writes the exit there).

const pollInterval = 100 * time.Millisecond

// orphanGrace is how long a container may read stopped without an exit record before the
// watcher takes its exit as unknown (its monitor died).
const orphanGrace = 5 * time.Second

type watch struct {
	exited   chan struct{} // closed once the exit is known
	gone     chan struct{} // closed once the record is removed
	followed chan struct{} // closed once the watcher of this run is done with it

	mu         sync.Mutex // guards exit, restarting, streams and drained
	exit       int
	restarting bool          // started again once it has exited: not removed on exit (--rm)
	streams    int           // attached clients reading the container's log
	drained    chan struct{} // closed when streams drops to 0 (made by idle)
}

func newWatch() *watch {
	return &watch{exited: make(chan struct{}), gone: make(chan struct{}), followed: make(chan struct{})}
}

func (w *watch) setRestarting(on bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.restarting = on
}

func (w *watch) isRestarting() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.restarting
}

// streamGrace is how long an auto-remove waits for the attached clients to read the log to its
// end: a client that attached before the start has not opened the log when a short-lived
// container exits, and the removal would take it away unread.
const streamGrace = 30 * time.Second

// attached registers a client reading the container's log to its end; the function returned
// says it is done.
func (ws *watchers) attached(id string) func() {
	w := ws.get(id)
	w.mu.Lock()
	w.streams++
	w.mu.Unlock()
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.streams--; w.streams == 0 && w.drained != nil {
			close(w.drained)
			w.drained = nil
		}
	}
}

// idle is closed once no client is attached.
func (w *watch) idle() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.streams == 0 {
		c := make(chan struct{})
		close(c)
		return c
	}
	if w.drained == nil {
		w.drained = make(chan struct{})
	}
	return w.drained
}

func (w *watch) code() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.exit
}

type watchers struct {
	s    *Server
	quit chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex // guards m and polling
	m       map[string]*watch
	polling map[string]bool
}

func newWatchers(s *Server) *watchers {
	return &watchers{s: s, quit: make(chan struct{}), m: map[string]*watch{}, polling: map[string]bool{}}
}

// get returns the watch of container id (made on first use).
func (ws *watchers) get(id string) *watch {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	w, ok := ws.m[id]
	if !ok {
		w = newWatch()
		ws.m[id] = w
	}
	return w
}

// resume watches every started container whose exit the daemon has not seen (after a restart).
func (ws *watchers) resume() {
	for _, rec := range ws.s.recs.all() {
		switch {
		case rec.Started && rec.Exit == nil:
			ws.start(rec)
		case rec.Exit != nil && rec.AutoRemove:
			// Exited while no daemon was there to remove it.
			ws.start(rec)
		}
	}
}

// start follows a started container (once).
func (ws *watchers) start(rec *record) {
	ws.mu.Lock()
	if ws.polling[rec.ID] {
		ws.mu.Unlock()
		return
	}
	ws.polling[rec.ID] = true
	ws.mu.Unlock()
	w := ws.get(rec.ID)
	ws.wg.Add(1)
	go func() {
		defer ws.wg.Done()
		defer close(w.followed)
		ws.follow(rec, w)
	}()
}

// again starts a container that has run once more: stop (when not nil) ends the current run,
// start runs once the watcher of the last run has recorded its exit (clients waiting for it get
// it; --rm does not remove it meanwhile); then the new run has a watch of its own, followed once
// the caller has updated the container's record.
func (ws *watchers) again(ctx context.Context, id string, stop, start func() error) error {
	w := ws.get(id)
	w.setRestarting(true)
	if stop != nil {
		if err := stop(); err != nil {
			w.setRestarting(false)
			return err
		}
	}
	ws.mu.Lock()
	following := ws.polling[id]
	ws.mu.Unlock()
	if following {
		select {
		case <-w.followed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := start(); err != nil {
		w.setRestarting(false)
		return err
	}
	ws.mu.Lock()
	ws.m[id] = newWatch()
	delete(ws.polling, id)
	ws.mu.Unlock()
	return nil
}

func (ws *watchers) follow(rec *record, w *watch) {
	s := ws.s
	caller := engine.Caller{Identity: engine.Identity{UID: rec.UID, Principal: "bulwarkd"}, Tenant: rec.Tenant}
	var stoppedSince time.Time
	info := rec.Exit
	for info == nil {
		ctr, err := s.eng.Inspect(rec.ID, caller)
		switch {
		case errdefs.Class(err) == errdefs.ErrNotFound:
			info = &engine.ExitInfo{Code: -1, Finished: time.Now().UTC()} // removed outside the daemon
		case err != nil:
			s.log.Warn("watch: inspect failed", "container", rec.ID, "error", err)
		case ctr.Exit != nil:
			info = ctr.Exit
		case ctr.Status == "stopped":
			if stoppedSince.IsZero() {
				stoppedSince = time.Now()
			} else if time.Since(stoppedSince) > orphanGrace {
				s.log.Warn("watch: stopped without an exit record (its monitor died)", "container", rec.ID)
				info = &engine.ExitInfo{Code: -1, Finished: time.Now().UTC()}
			}
		}
		if info != nil {
			break
		}
		select {
		case <-ws.quit:
			return
		case <-time.After(pollInterval):
		}
	}
	if _, err := s.recs.update(rec.ID, func(r *record) { r.Exit = info }); err != nil {
		s.log.Warn("watch: record exit", "container", rec.ID, "error", err)
	}
	w.mu.Lock()
	w.exit = info.Code
	w.mu.Unlock()
	closeOnce(w.exited)
	s.stdins.forget(rec.ID)
	s.events.publish(rec, events.ActionDie, map[string]string{"exitCode": strconv.Itoa(info.Code)})
	if !rec.AutoRemove || w.isRestarting() {
		return
	}
	// The attached clients read the whole log first (docker run --rm prints every line).
	select {
	case <-w.idle():
	case <-time.After(streamGrace):
		s.log.Warn("auto-remove: an attached client did not finish reading the log", "container", rec.ID)
	case <-ws.quit:
		return // the next daemon removes it (resume)
	}
	// --rm takes the container's anonymous volumes with it, as docker's does.
	if err := s.eng.Remove(rec.ID, caller, engine.RemoveOptions{Force: true, Volumes: true}); err != nil && errdefs.Class(err) != errdefs.ErrNotFound {
		s.log.Error("auto-remove failed", "container", rec.ID, "error", err)
		return
	}
	if err := s.recs.remove(rec.ID); err != nil {
		s.log.Error("auto-remove failed", "container", rec.ID, "error", err)
		return
	}
	ws.removed(rec.ID)
	s.events.publish(rec, events.ActionDestroy, nil)
}

// next waits until container id, whose run watched by old has ended, runs again, and returns the
// watch of its new run; false when ctx ends or the container is removed first.
func (ws *watchers) next(ctx context.Context, id string, old *watch) (*watch, bool) {
	for {
		ws.mu.Lock()
		w := ws.m[id]
		ws.mu.Unlock()
		if w != nil && w != old {
			return w, true
		}
		select {
		case <-ctx.Done():
			return nil, false
		case <-old.gone:
			return nil, false
		case <-time.After(pollInterval / 2):
		}
	}
}

// exit records a container's exit status and wakes the clients waiting for it.
func (ws *watchers) exit(id string, code int) {
	w := ws.get(id)
	w.mu.Lock()
	w.exit = code
	w.mu.Unlock()
	closeOnce(w.exited)
}

// removed wakes the clients waiting for the container's removal.
func (ws *watchers) removed(id string) {
	w := ws.get(id)
	closeOnce(w.exited)
	closeOnce(w.gone)
	ws.mu.Lock()
	delete(ws.m, id)
	delete(ws.polling, id)
	ws.mu.Unlock()
	ws.s.execs.forget(id)
	ws.s.stdins.forget(id)
}

func closeOnce(c chan struct{}) {
	select {
	case <-c:
	default:
		close(c)
	}
}

// stop ends the watchers (the daemon is shutting down; containers run on).
func (ws *watchers) stop() {
	close(ws.quit)
	ws.wg.Wait()
}
