package perf

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

// startRoundsPerIteration is how many interleaved rounds (one run of every runtime each) one
// iteration of BenchmarkStartToExit takes: `make perf`'s -benchtime 20x gives 100 runs of each.
// crun's run time is bimodal on a small VM (see startRegimes), and the median of 20 draws from two
// modes 13 ms apart moved the bulwark/crun ratio by up to 0.15 between otherwise equal runs; a round
// costs about 0.15 s.
const startRoundsPerIteration = 5

// BenchmarkStartToExit runs /bin/true to completion (create, start, wait, delete) with each runtime,
// interleaved in every iteration so drift in host load hits all of them alike, and reports medians
// in ms and Bulwark's ratio to each. Bulwark runs the plain runc-style bundle and applies its whole
// floor to it (user namespace, seccomp, Landlock, caps, cgroups); runc and crun run the same bundle
// as is, and again "hardened" (user namespace, no caps, Docker's seccomp profile).
func BenchmarkStartToExit(b *testing.B) {
	testenv.RequireRoot(b)
	bulwark := testenv.RuntimeBin(b)
	runc, crun := lookPath(b, "runc"), lookPath(b, "crun")
	rootfs := testenv.BusyboxRootfs(b)
	plain := bundleFor(b, rootfs, testenv.RuncSpec([]string{"/bin/true"}))
	hard := bundleFor(b, rootfs, hardened(b, testenv.RuncSpec([]string{"/bin/true"})))
	cases := []runtimeCase{
		{"bulwark", bulwark, []string{"--root", runRoot(b)}, plain, bulwarkEnv(b)},
		{"crun", crun, []string{"--root", runRoot(b)}, plain, nil},
		{"runc", runc, []string{"--root", runRoot(b)}, plain, nil},
		{"crun-hardened", crun, []string{"--root", runRoot(b)}, hard, nil},
		{"runc-hardened", runc, []string{"--root", runRoot(b)}, hard, nil},
	}
	times := make(map[string][]float64)
	rounds := b.N * startRoundsPerIteration
	b.ResetTimer()
	for i := 0; i < rounds; i++ {
		// Rotate the order too, so no runtime always follows the same one.
		for j := range cases {
			c := cases[(i+j)%len(cases)]
			d, err := c.run(fmt.Sprintf("bench-%s-%d", c.name, i))
			if err != nil {
				b.Fatal(err)
			}
			times[c.name] = append(times[c.name], float64(d.Microseconds())/1000)
		}
	}
	b.StopTimer()
	med := make(map[string]float64)
	var lines []string
	for _, c := range cases {
		med[c.name] = median(times[c.name])
		b.ReportMetric(med[c.name], c.name+"-ms")
		line := fmt.Sprintf("%-14s median %6.1f ms", c.name, med[c.name])
		if c.name != "bulwark" {
			line += fmt.Sprintf("   bulwark/%s = %.2f", c.name, med["bulwark"]/med[c.name])
		}
		lines = append(lines, line)
	}
	b.ReportMetric(med["bulwark"]/med["crun"], "bulwark/crun")
	record("start/crun", med["bulwark"]/med["crun"])
	b.ReportMetric(med["bulwark"]/med["runc"], "bulwark/runc")
	b.ReportMetric(0, "ns/op") // the per-op time mixes five runtimes; the medians above are the result
	// The testing package runs b.N=1 first; print only the real run's (on stdout: a benchmark's
	// log is cut at 10 lines).
	if b.N > 1 {
		bd, err := stepBreakdown(cases[0], "bench-steps", shareRuns)
		if err != nil {
			b.Fatal(err)
		}
		lines = append(lines, bd.lines("crun", med["crun"])...)
		recordShare("policy%", bd, "policy")
		recordShare("audit%", bd, "audit-wait")
		// The policy step with a fresh state root (no decision cached).
		cold := cases[0]
		cold.env = bulwarkEnv(b)
		step, err := policyStep(b, cold, "bench-step-cold")
		if err != nil {
			b.Fatal(err)
		}
		lines = append(lines, "bulwark cold "+step)
		regimes, err := startRegimes(cases[0], cases[1], min(b.N, breakdownRuns))
		if err != nil {
			b.Fatal(err)
		}
		lines = append(lines, regimes...)
		fmt.Printf("start-to-exit of /bin/true, %d interleaved runs each:\n%s\n", rounds, strings.Join(lines, "\n"))
	}
}

// policyStep runs c (bulwark-runc) once more with --debug and returns its policy step's timing
// (decide, cached, load, prepare, audit) from the log.
func policyStep(b *testing.B, c runtimeCase, id string) (string, error) {
	log := filepath.Join(b.TempDir(), "debug.log")
	c.args = append(slices.Clone(c.args), "--debug", "--log", log)
	if _, err := c.run(id); err != nil {
		return "", err
	}
	data, err := os.ReadFile(log)
	if err != nil {
		return "", err
	}
	_, step, ok := strings.Cut(string(data), "policy: allow (")
	if !ok {
		return "", fmt.Errorf("no policy step in bulwark-runc's debug log:\n%s", data)
	}
	step, _, _ = strings.Cut(step, ")")
	_, step, _ = strings.Cut(step, "decide ") // revision and input digest are noise here
	return "decide " + step, nil
}

// idleGap is the pause before each run of startRegimes' "after idle" regime.
const idleGap = 200 * time.Millisecond

// startRegimes measures bulwark-runc and crun outside the interleaved loop, in the two regimes that
// bound it, and returns a line for each. On a small VM a run's time depends on what ran just before
// it: back to back, a runtime finds the CPUs awake and its own pages cached; after an idle gap it
// pays the vCPUs' wake-ups at each hand-off between its processes. crun, a C runtime whose parent and
// child wait on each other, feels that most (measured here: 10.6 ms back to back, 28.8 ms after
// 0.2 s idle, 17–20 ms right after bulwark-runc); the interleaved medians above sit between the two.
// These lines show the spread so the interleaved ratio is read with it; the target is the
// interleaved ratio, as the issue defines it.
func startRegimes(bulwark, crun runtimeCase, n int) ([]string, error) {
	var lines []string
	for _, regime := range []struct {
		name string
		gap  time.Duration
	}{{"back to back", 0}, {"after 0.2 s idle", idleGap}} {
		med := make(map[string]float64)
		for _, c := range []runtimeCase{bulwark, crun} {
			// One unmeasured run first, so "back to back" really follows the same runtime.
			if _, err := c.run(fmt.Sprintf("regime-%s-warm", c.name)); err != nil {
				return nil, err
			}
			var ts []float64
			for i := 0; i < n; i++ {
				time.Sleep(regime.gap)
				d, err := c.run(fmt.Sprintf("regime-%s-%d-%d", c.name, regime.gap.Milliseconds(), i))
				if err != nil {
					return nil, err
				}
				ts = append(ts, float64(d.Microseconds())/1000)
			}
			med[c.name] = median(ts)
		}
		lines = append(lines, fmt.Sprintf("%-16s (%d runs each, not interleaved): bulwark %5.1f ms, crun %5.1f ms, bulwark/crun = %.2f",
			regime.name, n, med[bulwark.name], med[crun.name], med[bulwark.name]/med[crun.name]))
	}
	return lines, nil
}
