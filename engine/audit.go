package engine

import (
	"fmt"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/sandbox"
)

// Auditor is where the engine's events go: *audit.Log in production. An append error is a
// failure of the run: Bulwark does not act without a record of it.
type Auditor interface {
	Append(events ...audit.Event) ([]audit.Record, error)
}

// trail collects the events of one request and appends them in batches. Batching, and
// appending while the sandbox works, is what keeps the audit overhead of a run small: the
// request, identity, trust, image, decision and raises are appended (one fsync) while the
// sandbox is created, and the workload is released only once they are durable; create and start
// are appended while it runs; exit and delete are one last append. So the workload never runs
// before the decision that allowed it is durable, a refusal is durable before the CLI reports
// it, and only the last append is on the run's critical path. (A power loss in the milliseconds
// after start can lose the create and start records, never the decision.)
type trail struct {
	log Auditor
	// flushing orders appends: an asynchronous flush completes before the next one starts.
	flushing sync.WaitGroup
	asyncErr error // guarded by mu

	mu sync.Mutex // guards everything below
	// base is copied into every event: actor, tenant, request id, and, once known, container id
	// and image digest.
	base    audit.Event
	pending []audit.Event
	// rt and started let the sandbox's exit event be completed with duration and peak memory,
	// read from the container's cgroup before it is destroyed.
	rt      *sandbox.Runtime
	pid     int
	started time.Time
	// exit is the status the sandbox reported, for the caller.
	exit *ExitInfo
	// waited is how long the request was blocked on audit appends (the audit's share of its
	// latency; appends that overlap the sandbox's work are not counted).
	waited time.Duration
}

// blocked adds the time since start to the request's audit wait.
func (t *trail) blocked(start time.Time) {
	d := time.Since(start)
	t.mu.Lock()
	t.waited += d
	t.mu.Unlock()
}

func newTrail(log Auditor, id Identity, tenant, requestID string) *trail {
	uid := id.UID
	return &trail{log: log, base: audit.Event{
		Actor:     audit.Actor{UID: &uid, Principal: id.Principal},
		Tenant:    tenant,
		RequestID: requestID,
	}}
}

func (t *trail) setContainer(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.base.ContainerID = id
}

func (t *trail) setImage(digest string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.base.ImageDigest = digest
}

// add queues one event; flush makes the queue durable.
func (t *trail) add(typ, action string, attrs map[string]string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ev := t.base
	ev.Type, ev.Action, ev.Attrs = typ, action, attrs
	t.pending = append(t.pending, ev)
}

func (t *trail) flush() error {
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

// flushAsync appends what is queued without waiting; the next flush waits for it and reports
// its error.
func (t *trail) flushAsync() {
	t.flushing.Wait()
	t.mu.Lock()
	evs := t.pending
	t.pending = nil
	t.mu.Unlock()
	t.flushing.Add(1)
	go func() {
		defer t.flushing.Done()
		if err := t.append(evs); err != nil {
			t.mu.Lock()
			t.asyncErr = err
			t.mu.Unlock()
		}
	}()
}

// waitAsync waits for an asynchronous flush and returns its error.
func (t *trail) waitAsync() error {
	defer t.blocked(time.Now())
	t.flushing.Wait()
	t.mu.Lock()
	defer t.mu.Unlock()
	err := t.asyncErr
	t.asyncErr = nil
	return err
}

func (t *trail) append(evs []audit.Event) error {
	if len(evs) == 0 {
		return nil
	}
	if _, err := t.log.Append(evs...); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// Event implements sandbox.EventSink. Lifecycle events are queued with the request's context;
// the exit event is completed from the container's cgroup (still present until delete).
func (t *trail) Event(containerID, action string, attrs map[string]string) {
	if attrs == nil {
		attrs = map[string]string{}
	}
	switch action {
	case "start":
		t.mu.Lock()
		t.started = time.Now()
		if t.pid > 0 {
			attrs["pid"] = strconv.Itoa(t.pid)
		}
		t.mu.Unlock()
	case "exit":
		t.completeExit(containerID, attrs)
	}
	t.mu.Lock()
	ev := t.base
	t.mu.Unlock()
	ev.Type, ev.Action, ev.Attrs = audit.TypeContainer, action, attrs
	if containerID != "" {
		ev.ContainerID = containerID
	}
	t.mu.Lock()
	t.pending = append(t.pending, ev)
	t.mu.Unlock()
}

// ExitInfo is how a container's init ended.
type ExitInfo struct {
	Code       int           `json:"code"`
	Signal     string        `json:"signal,omitempty"`
	Duration   time.Duration `json:"durationNs"`
	PeakMemory uint64        `json:"peakMemory"`
	OOMKilled  bool          `json:"oomKilled"`
	Finished   time.Time     `json:"finished"`
}

func (t *trail) completeExit(id string, attrs map[string]string) {
	t.mu.Lock()
	rt, started := t.rt, t.started
	t.mu.Unlock()
	info := &ExitInfo{Code: -1, Finished: time.Now().UTC()}
	if s, err := strconv.Atoi(attrs["status"]); err == nil {
		info.Code = s
		attrs["code"] = attrs["status"]
		if s > 128 && s < 128+65 {
			info.Signal = unix.SignalName(syscall.Signal(s - 128))
			attrs["signal"] = info.Signal
		}
	}
	if !started.IsZero() {
		info.Duration = time.Since(started)
		attrs["duration_ns"] = strconv.FormatInt(info.Duration.Nanoseconds(), 10)
	}
	if rt != nil {
		if c, err := rt.Load(id); err == nil {
			if st, err := c.Stats(); err == nil {
				info.PeakMemory = st.MemoryPeak
				info.OOMKilled = st.OOMKills > 0
				attrs["peak_memory"] = strconv.FormatUint(st.MemoryPeak, 10)
				attrs["oom_kills"] = strconv.FormatUint(st.OOMKills, 10)
			}
		}
	}
	if info.OOMKilled {
		t.add(audit.TypeContainer, "oom", map[string]string{"oom_kills": attrs["oom_kills"]})
	}
	t.mu.Lock()
	t.exit = info
	t.mu.Unlock()
}

func (t *trail) exitInfo() *ExitInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.exit
}
