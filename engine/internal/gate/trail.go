package gate

import (
	"fmt"
	"sync"
	"time"

	"bulwark.dev/bulwark/audit"
)

// Appender is where a trail's events go: *audit.Log in production. An append error is a failure
// of the request: Bulwark does not act without a record of it.
type Appender interface {
	Append(events ...audit.Event) ([]audit.Record, error)
}

// Trail collects the events of one request and appends them in batches (one fsync each).
// Appending while the sandbox works (FlushAsync, then WaitAsync before the workload is released)
// is what keeps the audit's share of a request's latency small: the decision is durable before
// anything runs, a refusal is durable before it is reported, and only the last append is on the
// critical path.
type Trail struct {
	log Appender
	// flushing orders appends: an asynchronous flush completes before the next one starts.
	flushing sync.WaitGroup

	mu sync.Mutex // guards everything below
	// base is copied into every event: actor, tenant, request id and, once known, container id
	// and image digest.
	base     audit.Event
	pending  []audit.Event
	asyncErr error
	// waited is how long the request was blocked on appends (appends that overlap other work
	// are not counted).
	waited time.Duration
	// async runs the next asynchronous flush's append (SetAsync); nil: a goroutine of its own.
	async func(append func())
}

// NewTrail starts the trail of request requestID by actor for tenant.
func NewTrail(log Appender, actor audit.Actor, tenant, requestID string) *Trail {
	return &Trail{log: log, base: audit.Event{Actor: actor, Tenant: tenant, RequestID: requestID}}
}

// RequestID is the request's id, in every event.
func (t *Trail) RequestID() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.base.RequestID
}

// SetContainer names the container in the events from now on.
func (t *Trail) SetContainer(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.base.ContainerID = id
}

// SetImage names the image digest in the events from now on.
func (t *Trail) SetImage(digest string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.base.ImageDigest = digest
}

// Add queues one event; Flush makes the queue durable.
func (t *Trail) Add(typ, action string, attrs map[string]string) {
	t.AddFor("", typ, action, attrs)
}

// AddFor queues one event about container id (the trail's own container if empty).
func (t *Trail) AddFor(id, typ, action string, attrs map[string]string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ev := t.base
	ev.Type, ev.Action, ev.Attrs = typ, action, attrs
	if id != "" {
		ev.ContainerID = id
	}
	t.pending = append(t.pending, ev)
}

// SetAsync makes the next FlushAsync hand its append to run, which must run it on a goroutine
// other than its caller's, instead of starting a goroutine for it: bulwark-runc's policy session
// has one waiting already (runcgate.Begin). A goroutine started on its start path cost the policy
// step ≈ 20 µs more than waking one: the first goroutine to need a fresh stack refills the stack
// cache, and the new stack span's pages are faulted in one by one. Later flushes start their own.
func (t *Trail) SetAsync(run func(append func())) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.async = run
}

// Refuse records that the request was refused at step, and returns err.
func (t *Trail) Refuse(step string, err error) error {
	t.Add(audit.TypeEngine, "refused", map[string]string{"step": step, "error": err.Error()})
	return err
}

// Flush appends what is queued and waits for it (and for an asynchronous flush before it,
// whose error it reports).
func (t *Trail) Flush() error {
	defer t.blocked(time.Now())
	t.flushing.Wait()
	t.mu.Lock()
	evs, aerr := t.pending, t.asyncErr
	t.pending, t.asyncErr = nil, nil
	t.mu.Unlock()
	if aerr != nil {
		return aerr
	}
	return t.append(evs)
}

// FlushAsync appends what is queued without waiting; the next Flush or WaitAsync waits for it
// and reports its error.
func (t *Trail) FlushAsync() {
	t.flushing.Wait()
	t.mu.Lock()
	evs, run := t.pending, t.async
	t.pending, t.async = nil, nil
	t.mu.Unlock()
	t.flushing.Add(1)
	flush := func() {
		defer t.flushing.Done()
		if err := t.append(evs); err != nil {
			t.mu.Lock()
			t.asyncErr = err
			t.mu.Unlock()
		}
	}
	if run != nil {
		run(flush)
		return
	}
	go flush()
}

// WaitAsync waits for an asynchronous flush and returns its error.
func (t *Trail) WaitAsync() error {
	defer t.blocked(time.Now())
	t.flushing.Wait()
	t.mu.Lock()
	defer t.mu.Unlock()
	err := t.asyncErr
	t.asyncErr = nil
	return err
}

// Waited is how long the request has been blocked on appends so far.
func (t *Trail) Waited() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.waited
}

func (t *Trail) blocked(start time.Time) {
	d := time.Since(start)
	t.mu.Lock()
	t.waited += d
	t.mu.Unlock()
}

func (t *Trail) append(evs []audit.Event) error {
	if len(evs) == 0 {
		return nil
	}
	if _, err := t.log.Append(evs...); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}
