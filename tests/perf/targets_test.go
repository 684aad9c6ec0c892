package perf

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
)

// The targets of issue 14, each a ratio the benchmarks measure side by side. A benchmark hands its
// result to record; TestMain prints every target once, after the last benchmark, with its measured
// ratio and whether it is met (a target whose benchmark did not run, was skipped or is opt-in says
// so).

// target is one bound on a measured ratio.
type target struct {
	key   string
	name  string
	limit float64 // the ratio must be at most this
	pct   bool    // shown as a percentage
	from  string  // the benchmark that measures it
}

var targets = []target{
	{"start/crun", "bulwark-runc start-to-exit / crun", 1.0, false, "StartToExit"},
	{"policy%", "policy step, share of bulwark-runc's start", 0.02, true, "StartToExit"},
	{"audit%", "audit append (audit-wait), share of bulwark-runc's start", 0.02, true, "StartToExit"},
	{"tuf%", "TUF resolution (warm cache), share of bulwark run", 0.05, true, "RunImage"},
	{"run/runc", "bulwark run --rm IMAGE true / bulwark-runc run", 1.3, false, "RunImage"},
	{"exec/runc", "bulwark exec / runc exec", 1.0, false, "Exec"},
	{"runc-exec/runc", "bulwark-runc exec / runc exec", 1.0, false, "Exec"},
	{"memory/runc", "host memory per idle sandbox, bulwark-runc / runc", 1.0, false, "IdleMemory"},
	{"big/docker", "460 MB image: bulwark run --rm IMAGE true / docker run --rm (runc, overlay2)", 1.0, false, "BigImageRun, opt-in: " + bigTarEnv},
}

var (
	resultsMu sync.Mutex
	results   = map[string]float64{}
)

// record keeps the measured ratio of the target key (the last call wins: the testing package
// runs a benchmark with b.N=1 before the real run).
func record(key string, ratio float64) {
	resultsMu.Lock()
	defer resultsMu.Unlock()
	results[key] = ratio
}

// printTargets prints the table of every target, once.
func printTargets() {
	resultsMu.Lock()
	defer resultsMu.Unlock()
	if v, ok := idleMeasured["bulwark-runc-kB/container"]; ok && idleMeasured["runc-kB/container"] > 0 {
		results["memory/runc"] = v / idleMeasured["runc-kB/container"]
	}
	var b strings.Builder
	fmt.Fprintln(&b, "issue 14 targets (ratios of medians measured side by side in this run):")
	met, measured := 0, 0
	for _, t := range targets {
		v, ok := results[t.key]
		show := func(x float64) string {
			if t.pct {
				return fmt.Sprintf("%.1f%%", 100*x)
			}
			return fmt.Sprintf("%.2f", x)
		}
		verdict, value := "not measured ("+t.from+")", "-"
		if ok {
			measured++
			value, verdict = show(v), "NOT MET"
			if v <= t.limit {
				met++
				verdict = "met"
			}
		}
		fmt.Fprintf(&b, "  %-78s %8s  <= %-5s  %s\n", t.name, value, show(t.limit), verdict)
	}
	fmt.Fprintf(&b, "  %d of %d measured targets met\n", met, measured)
	os.Stdout.WriteString(b.String())
}

// recordShare records step's median share of the breakdown's median wall time as the target key,
// if the runs timed that step.
func recordShare(key string, bd *breakdown, step string) {
	if len(bd.steps[step]) == 0 || len(bd.wall) == 0 {
		return
	}
	record(key, median(slices.Clone(bd.steps[step]))/median(slices.Clone(bd.wall)))
}
