package engine

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"bulwark.dev/bulwark/sandbox"
)

// Step timing of a run, for benchmarks (tests/perf) and an operator asking where the time goes:
// with Config.Steps set, Prepare, Start and Wait report each of their steps, in order, as they end
// (their times add up to the request's). The sandbox's own steps (sandbox/steps.go, as bulwark-runc
// --debug reports them) follow the step they were part of, named <step>:<sandbox step> (e.g.
// create:cgroups+idrange, remove:teardown); they are parts of that step, not added to it. The
// steps:
//
//	request    the request checked, the network looked up
//	tuf        the reference resolved through TUF (the pinned root, the metadata cache and its lock)
//	verify     the local tag against the signed digest, the manifest, every blob against its digest
//	rootfs     the image's unpacked layers (unpacked once per image)
//	spec       the effective spec: image config, request, volumes, bind sources resolved
//	policy     the decision (cached or evaluated), its records, the quota reservation
//	records    the container's record, spec and plan written, its layers found
//	create     the sandbox created (bulwark-runc's create, in process)
//	ready      the network attached, the supervisor's watch and the decision's records awaited
//	start      the workload released, its record written
//	wait       until the workload exited, its exit recorded (with --rm, only if the removal fails)
//	remove     --rm: the sandbox deleted, the container's state removed
//	flush      the last audit records made durable

// stepClock times one request's consecutive steps into the engine's sink (nil: not timed). It is
// also the sink of the sandbox it creates: the sandbox's steps are kept until the step they are
// part of ends.
type stepClock struct {
	sink sandbox.StepSink
	id   string
	last time.Time

	mu    sync.Mutex
	parts []stepPart
}

// stepPart is one of the sandbox's steps within the current step.
type stepPart struct {
	name string
	d    time.Duration
}

func (e *Engine) newStepClock(id string) *stepClock {
	if e.cfg.Steps == nil {
		return nil
	}
	return &stepClock{sink: e.cfg.Steps, id: id, last: time.Now()}
}

// lap reports the time since the previous lap (or the clock's start) as step, then the sandbox's
// steps within it.
func (c *stepClock) lap(step string) {
	if c == nil {
		return
	}
	now := time.Now()
	c.sink.Step(c.id, step, now.Sub(c.last))
	c.last = now
	c.mu.Lock()
	parts := c.parts
	c.parts = nil
	c.mu.Unlock()
	for _, p := range parts {
		c.sink.Step(c.id, step+":"+p.name, p.d)
	}
}

// Step keeps one of the sandbox's steps (sandbox.StepSink) for the step in progress.
func (c *stepClock) Step(_, step string, d time.Duration) {
	c.mu.Lock()
	c.parts = append(c.parts, stepPart{step, d})
	c.mu.Unlock()
}

// StepLog is a sandbox.StepSink that keeps every step's time, for one "steps:" line in the form
// bulwark-runc --debug logs (name=nanoseconds, with main-at and end-at the Unix times the process's
// main began and the line was written).
type StepLog struct {
	mu     sync.Mutex
	mainAt time.Time
	steps  []string
}

// NewStepLog starts a step log for a process whose main began at mainAt.
func NewStepLog(mainAt time.Time) *StepLog { return &StepLog{mainAt: mainAt} }

// Step records one step.
func (l *StepLog) Step(_, step string, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.steps = append(l.steps, fmt.Sprintf("%s=%d", step, d.Nanoseconds()))
}

// WriteFile writes the steps line to path.
func (l *StepLog) WriteFile(path string) error {
	l.mu.Lock()
	line := fmt.Sprintf("steps: main-at=%d %s end-at=%d\n", l.mainAt.UnixNano(), strings.Join(l.steps, " "), time.Now().UnixNano())
	l.mu.Unlock()
	if err := os.WriteFile(path, []byte(line), 0o600); err != nil {
		return fmt.Errorf("step log: %w", err)
	}
	return nil
}
