package engine

import (
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/engine/internal/gate"
	"bulwark.dev/bulwark/sandbox"
)

// Auditor is where the engine's events go: *audit.Log in production. An append error is a failure
// of the run: Bulwark does not act without a record of it.
type Auditor = gate.Appender

// trail is one request's audit trail (gate.Trail: batched appends, so that only the last is on
// a run's critical path — the request, identity, trust, image, decision and raises are appended
// while the sandbox is created, and the workload is released only once they are durable; create
// and start while it runs; exit and delete are one last append), and the sandbox's event sink.
type trail struct {
	*gate.Trail

	mu sync.Mutex // guards everything below
	// rt and started let the sandbox's exit event be completed with duration and peak memory,
	// read from the container's cgroup before it is destroyed; ctr is the container as this
	// process created it (nil: loaded from rt), whose cgroup it already knows.
	rt      *sandbox.Runtime
	ctr     *sandbox.Container
	pid     int
	started time.Time
	// exit is the status the sandbox reported, for the caller.
	exit *ExitInfo
}

func newTrail(log Auditor, id Identity, tenant, requestID string) *trail {
	uid := id.UID
	return &trail{Trail: gate.NewTrail(log, audit.Actor{UID: &uid, Principal: id.Principal}, tenant, requestID)}
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
	t.AddFor(containerID, audit.TypeContainer, action, attrs)
}

// ExitInfo is how a container's init ended.
type ExitInfo struct {
	Code       int           `json:"code"`
	Signal     string        `json:"signal,omitempty"`
	Duration   time.Duration `json:"durationNs"`
	PeakMemory uint64        `json:"peakMemory"`
	OOMKilled  bool          `json:"oomKilled"`
	Finished   time.Time     `json:"finished"`
	// Error says why Code is not the workload's status (-1: unknown; the supervisor died, or
	// the client of a foreground run did), or why a restart failed.
	Error string `json:"error,omitempty"`
}

func (t *trail) completeExit(id string, attrs map[string]string) {
	t.mu.Lock()
	rt, c, started := t.rt, t.ctr, t.started
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
	if c == nil || c.ID() != id {
		c = nil
		if rt != nil {
			if l, err := rt.Load(id); err == nil {
				c = l
			}
		}
	}
	if c != nil {
		if peak, kills, err := c.ExitCounters(); err == nil {
			info.PeakMemory = peak
			info.OOMKilled = kills > 0
			attrs["peak_memory"] = strconv.FormatUint(peak, 10)
			attrs["oom_kills"] = strconv.FormatUint(kills, 10)
		}
	}
	if info.OOMKilled {
		t.Add(audit.TypeContainer, "oom", map[string]string{"oom_kills": attrs["oom_kills"]})
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
