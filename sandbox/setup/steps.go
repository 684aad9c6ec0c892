package setup

import "time"

// StepTime is one timed step; the setup child sends its own with "ready".
type StepTime struct {
	Step string
	NS   int64
}

// StepClock times consecutive steps: each lap is the time since the previous one.
type StepClock struct {
	Started, Last time.Time
	Steps         []StepTime
}

// NewStepClock starts a clock now.
func NewStepClock() *StepClock {
	now := time.Now()
	return &StepClock{Started: now, Last: now}
}

// Lap records the time since the previous lap (or the clock's start) as step.
func (c *StepClock) Lap(step string) {
	now := time.Now()
	c.add(step, now.Sub(c.Last))
	c.Last = now
}

func (c *StepClock) add(step string, d time.Duration) {
	c.Steps = append(c.Steps, StepTime{Step: step, NS: d.Nanoseconds()})
}
