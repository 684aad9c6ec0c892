package integration

import (
	"sync"
	"testing"

	"bulwark.dev/bulwark/sandbox"
	"bulwark.dev/bulwark/tests/internal/testenv"
)

// recorder is an EventSink keeping every event.
type recorder struct {
	mu     sync.Mutex
	events []event // guarded by mu
}

type event struct {
	id, action string
	attrs      map[string]string
}

func (r *recorder) Event(id, action string, attrs map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, event{id, action, attrs})
}

func (r *recorder) count(id, action string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.id == id && e.action == action {
			n++
		}
	}
	return n
}

// TestEventsForAudit: the caller's EventSink hears every raise (one event each, as recorded in
// State) and each lifecycle step, so an audit log can account for what the floor changed.
func TestEventsForAudit(t *testing.T) {
	e := testenv.NewEnv(t, "tenant-events")
	rec := &recorder{}
	rt, err := sandbox.New(sandbox.Options{Root: e.Root, Tenant: "tenant-events", Events: rec})
	if err != nil {
		t.Fatal(err)
	}
	c := e.MustCreate(rt, testenv.RuncSpec(probe("ids")))
	raises := len(c.MustState().Raises)
	if err := c.Start(); err != nil {
		t.Fatalf("start: %v%s", err, c.ErrText())
	}
	c.WaitExit()
	if err := testenv.DeleteWithin(c.Container, false); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if got := rec.count(c.ID, "raise"); got != raises || raises == 0 {
		t.Errorf("%d raise events for %d raises in State", got, raises)
	}
	for _, a := range []string{"create", "start", "delete"} {
		if rec.count(c.ID, a) != 1 {
			t.Errorf("%d %q events, want 1 (all: %+v)", rec.count(c.ID, a), a, rec.events)
		}
	}
}
