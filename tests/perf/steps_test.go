package perf

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The per-step breakdown: where bulwark-runc's start-to-exit goes, from the step times
// `bulwark-runc --debug` logs (sandbox/steps.go names them, the CLI's own cli:* between them) and,
// for the runtime's own start-up, the time from the benchmark starting the process until its main
// began (runtime:exec), and for its end the time from its last step until it was reaped
// (runtime:exit). "other" is the rest of the wall time: what no step covers.

// breakdownRuns is how many extra --debug runs a breakdown takes its medians from (at most b.N,
// except BenchmarkStartToExit's: see shareRuns).
const breakdownRuns = 20

// shareRuns is how many --debug runs BenchmarkStartToExit's breakdown always takes, whatever b.N:
// the policy step's and the audit wait's shares of the start are targets, decided on the medians
// of its steps. With 10 runs the policy step's median moved between 0.20 and 0.28 ms from one
// `make perf` to the next (1.1-2.0% against a 2% target): one noisy run could decide the verdict.
const shareRuns = 20

// nestedParent names the top-level step a nested one is part of (shown indented below it, not
// counted again): the policy's parts, the setup child's steps (inside await-ready, except
// child:exec, which overlaps the runtime's steps from seccomp to config), and in bulwark run's
// steps the sandbox's within the engine's create, start, wait and remove (engine/steps.go).
func nestedParent(name string) string {
	parent, _, ok := strings.Cut(name, ":")
	switch {
	case !ok:
		return ""
	case parent == "child":
		return "await-ready"
	case parent == "policy", parent == "create", parent == "start", parent == "wait", parent == "remove":
		return parent
	}
	return ""
}

// breakdown is the step times (ms) of n runs.
type breakdown struct {
	order []string
	steps map[string][]float64
	wall  []float64
}

// stepBreakdown runs c (bulwark-runc) n times with --debug and collects its step times.
func stepBreakdown(c runtimeCase, idPrefix string, n int) (*breakdown, error) {
	i := 0
	return collectSteps(n, func(log string) (time.Duration, error) {
		dc := c
		dc.args = append(slices.Clone(c.args), "--debug", "--log", log)
		i++
		return dc.run(fmt.Sprintf("%s-%d", idPrefix, i))
	})
}

// collectSteps calls run n times with a fresh --debug log path and collects the step times it
// logs. The log goes to a tmpfs: bulwark-runc writes it with O_SYNC, which on a disk would add
// its own time.
func collectSteps(n int, run func(log string) (time.Duration, error)) (*breakdown, error) {
	dir, err := os.MkdirTemp("/dev/shm", "bulwark-perf-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bd := &breakdown{steps: make(map[string][]float64)}
	for i := 0; i < n; i++ {
		log := filepath.Join(dir, fmt.Sprintf("debug-%d.log", i))
		t0 := time.Now()
		wall, err := run(log)
		if err != nil {
			return nil, err
		}
		steps, err := parseSteps(log, t0, t0.Add(wall))
		if err != nil {
			return nil, err
		}
		bd.wall = append(bd.wall, ms(wall))
		var top float64
		for _, s := range steps {
			if !slices.Contains(bd.order, s.name) {
				bd.order = append(bd.order, s.name)
			}
			bd.steps[s.name] = append(bd.steps[s.name], s.ms)
			if nestedParent(s.name) == "" {
				top += s.ms
			}
		}
		if !slices.Contains(bd.order, "other") {
			bd.order = append(bd.order, "other")
		}
		bd.steps["other"] = append(bd.steps["other"], ms(wall)-top)
	}
	return bd, nil
}

type stepMS struct {
	name string
	ms   float64
}

// parseSteps reads the "steps:" line of a --debug log; runtime:exec is the time from t0 until
// the runtime's main began, runtime:exit from its last step until t1, when it was reaped.
func parseSteps(log string, t0, t1 time.Time) ([]stepMS, error) {
	data, err := os.ReadFile(log)
	if err != nil {
		return nil, err
	}
	_, line, ok := strings.Cut(string(data), "steps: ")
	if !ok {
		return nil, fmt.Errorf("no step times in bulwark-runc's debug log:\n%s", data)
	}
	line, _, _ = strings.Cut(line, "\"")
	var out []stepMS
	for _, f := range strings.Fields(line) {
		name, v, _ := strings.Cut(f, "=")
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("step %q: %w", f, err)
		}
		switch name {
		case "main-at":
			out = append(out, stepMS{"runtime:exec", ms(time.Unix(0, n).Sub(t0))})
			continue
		case "end-at":
			out = append(out, stepMS{"runtime:exit", ms(t1.Sub(time.Unix(0, n)))})
			continue
		}
		out = append(out, stepMS{name, ms(time.Duration(n))})
	}
	return out, nil
}

// lines prints each step's median, its share of the median wall time and its quartiles (how much
// one run's figure can be trusted), with ref's median (crun's) for scale.
func (bd *breakdown) lines(refName string, ref float64) []string {
	wall := median(slices.Clone(bd.wall))
	out := []string{fmt.Sprintf("bulwark-runc per step, %d --debug runs: median %.1f ms (%s %.1f ms, %.2fx)",
		len(bd.wall), wall, refName, ref, wall/ref)}
	line := func(name, indent string) string {
		v := slices.Clone(bd.steps[name])
		m := median(v) // sorts v
		return fmt.Sprintf("  %-26s %7.2f ms %5.1f%%   p25 %6.2f  p75 %6.2f", indent+name, m, 100*m/wall, v[len(v)/4], v[3*len(v)/4])
	}
	for _, name := range bd.order {
		if nestedParent(name) != "" {
			continue
		}
		out = append(out, line(name, ""))
		for _, sub := range bd.order {
			if nestedParent(sub) == name {
				out = append(out, line(sub, "  "))
			}
		}
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
