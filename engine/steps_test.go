package engine

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// recordedSteps is a sandbox.StepSink that keeps the step names in order.
type recordedSteps struct {
	mu    sync.Mutex
	names []string
}

func (r *recordedSteps) Step(_, step string, _ time.Duration) {
	r.mu.Lock()
	r.names = append(r.names, step)
	r.mu.Unlock()
}

// TestStepClockNestsSandboxSteps: the sandbox's steps follow the engine's step they were part
// of, named after it, and are not carried into the next one.
func TestStepClockNestsSandboxSteps(t *testing.T) {
	sink := &recordedSteps{}
	clk := (&Engine{cfg: Config{Steps: sink}}).newStepClock("c1")
	clk.lap("records")
	clk.Step("c1", "cgroups+idrange", time.Millisecond)
	clk.Step("c1", "child:mounts", time.Millisecond)
	clk.lap("create")
	clk.lap("ready")
	clk.Step("c1", "teardown", time.Millisecond)
	clk.lap("remove")
	want := []string{"records", "create", "create:cgroups+idrange", "create:child:mounts", "ready", "remove", "remove:teardown"}
	if !slices.Equal(sink.names, want) {
		t.Fatalf("steps %q, want %q", sink.names, want)
	}
	var untimed *stepClock
	untimed.lap("create") // an untimed run's clock is nil: nothing to report
}
