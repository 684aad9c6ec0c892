package perf

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

// BenchmarkIdleMemory (issue 14) starts BULWARK_IDLE_N (default 100) sleeping containers with
// each runtime (create + start, detached, the plain bundle; state under a tmpfs as /run would
// be) and reports the host memory each costs. MemAvailable moves with everything else the host
// does (other tests' processes come and go by hundreds of MB), so the figure compared is what a
// container can be charged with: the growth of the kernel's own memory (/proc/meminfo's Slab,
// KernelStack, PageTables, Percpu, and Shmem: tmpfs files, state included) plus the PSS of the
// containers' processes; MemAvailable's drop is shown beside it, and the slab caches that grew
// most say where the kernel's part goes. Runtimes take turns, BULWARK_IDLE_ROUNDS (default 3)
// rounds, medians kept. A benchmark, not a test:
//
//	BULWARK_BIN=$PWD/bin go test -run '^$' -bench IdleMemory -benchtime 1x ./tests/perf/
//
// BULWARK_IDLE_BASE=/path/to/other/bulwark-runc adds that build as "bulwark-base", measured in
// the same rounds: an A/B of a change, since the figures move with whatever else the host does.
//
// The testing package calls a benchmark again with a larger b.N (make perf: 20x); the rounds do
// not depend on it, so the measurement is made once per process and reported by each call.
func BenchmarkIdleMemory(b *testing.B) {
	testenv.RequireRoot(b)
	if idleMeasured == nil {
		idleMeasured = measureIdle(b)
	}
	for name, v := range idleMeasured {
		b.ReportMetric(v, name)
	}
	b.ReportMetric(0, "ns/op")
}

// idleMeasured is BenchmarkIdleMemory's result (metric name → value), once made.
var idleMeasured map[string]float64

// measureIdle makes BenchmarkIdleMemory's measurement, prints it and returns its metrics.
func measureIdle(b *testing.B) map[string]float64 {
	n, rounds := envInt("BULWARK_IDLE_N", 100), envInt("BULWARK_IDLE_ROUNDS", 3)
	rootfs := testenv.BusyboxRootfs(b)
	sleeping := bundleFor(b, rootfs, testenv.RuncSpec([]string{"/bin/sleep", "3600"}))
	cases := []runtimeCase{
		{"bulwark-runc", testenv.RuntimeBin(b), []string{"--root", runRoot(b)}, sleeping, bulwarkEnv(b)},
		{"runc", lookPath(b, "runc"), []string{"--root", runRoot(b)}, sleeping, nil},
		{"crun", lookPath(b, "crun"), []string{"--root", runRoot(b)}, sleeping, nil},
	}
	if base := os.Getenv("BULWARK_IDLE_BASE"); base != "" {
		cases = append(cases, runtimeCase{"bulwark-base", base, []string{"--root", runRoot(b)}, sleeping, bulwarkEnv(b)})
	}
	per := map[string]map[string][]float64{} // runtime → field → kB per container, each round
	b.ResetTimer()
	for r := 0; r < rounds; r++ {
		for j := range cases {
			c := cases[(r+j)%len(cases)]
			d, err := idleCost(c, n, fmt.Sprintf("idle-%s-%d", c.name, r))
			if err != nil {
				b.Fatal(err)
			}
			if per[c.name] == nil {
				per[c.name] = map[string][]float64{}
			}
			for k, v := range d {
				per[c.name][k] = append(per[c.name][k], v)
			}
		}
	}
	b.StopTimer()
	lines := []string{fmt.Sprintf("host memory per idle container (kB), %d containers, %d rounds, medians:", n, rounds)}
	head := fmt.Sprintf("%-13s %9s %9s %9s %6s", "", "charged", "available", "PSS", "mounts")
	for _, f := range memParts {
		head += fmt.Sprintf(" %9s", f)
	}
	lines = append(lines, head)
	med, metrics := map[string]float64{}, map[string]float64{}
	for _, c := range cases {
		med[c.name] = median(per[c.name]["charged"])
		line := fmt.Sprintf("%-13s %9.0f %9.0f %9.0f %6.0f", c.name, med[c.name], median(per[c.name]["MemAvailable"]), median(per[c.name]["PSS"]), median(per[c.name]["mounts"]))
		for _, f := range memParts {
			line += fmt.Sprintf(" %9.0f", median(per[c.name][f]))
		}
		lines = append(lines, line)
		metrics[c.name+"-kB/container"] = med[c.name]
	}
	ratios := fmt.Sprintf("charged: bulwark-runc/runc = %.2f   bulwark-runc/crun = %.2f",
		med["bulwark-runc"]/med["runc"], med["bulwark-runc"]/med["crun"])
	if base, ok := med["bulwark-base"]; ok {
		ratios += fmt.Sprintf("   bulwark-base/runc = %.2f   bulwark-runc - bulwark-base = %+.0f kB", base/med["runc"], med["bulwark-runc"]-base)
	}
	lines = append(lines, ratios)
	for _, c := range cases {
		lines = append(lines, c.name+" slab caches that grew most (kB per container): "+topSlabs(per[c.name], 14))
	}
	fmt.Println(strings.Join(lines, "\n"))
	return metrics
}

// memParts are the /proc/meminfo fields shown; charged sums the kernel's own (all but AnonPages)
// and the containers' PSS.
var memParts = []string{"Slab", "SUnreclaim", "KernelStack", "PageTables", "Percpu", "Shmem", "AnonPages"}

// idleCost starts n sleeping containers of c, measures, and deletes them; it returns each
// field's growth per container in kB (MemAvailable's drop), "PSS" of the containers' processes,
// "charged", "slab:<cache>" per slab cache, and "mounts" (a container's, in its mountinfo: each
// costs a mount struct of host memory).
func idleCost(c runtimeCase, n int, prefix string) (map[string]float64, error) {
	before, err := settledMeminfo()
	if err != nil {
		return nil, err
	}
	slabBefore, err := slabKB()
	if err != nil {
		return nil, err
	}
	var ids []string
	defer func() {
		for _, id := range ids {
			c.detached("delete", "--force", id) //nolint:errcheck // best effort: the test's state goes with it
		}
	}()
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		if err := c.detached("create", "--bundle", c.bundle, id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
		if err := c.detached("start", id); err != nil {
			return nil, err
		}
	}
	after, err := settledMeminfo()
	if err != nil {
		return nil, err
	}
	slabAfter, err := slabKB()
	if err != nil {
		return nil, err
	}
	var pss, mounts float64
	for _, id := range ids {
		pid, err := containerPid(c, id)
		if err != nil {
			return nil, err
		}
		kb, err := processPSS(pid)
		if err != nil {
			return nil, err
		}
		pss += kb
		mi, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
		if err != nil {
			return nil, err
		}
		mounts += float64(strings.Count(string(mi), "\n"))
	}
	out := map[string]float64{"MemAvailable": (before["MemAvailable"] - after["MemAvailable"]) / float64(n), "PSS": pss / float64(n), "mounts": mounts / float64(n)}
	for _, f := range memParts {
		out[f] = (after[f] - before[f]) / float64(n)
	}
	out["charged"] = out["PSS"]
	for _, f := range []string{"Slab", "KernelStack", "PageTables", "Percpu", "Shmem"} {
		out["charged"] += out[f]
	}
	for k, v := range slabAfter {
		out["slab:"+k] = (v - slabBefore[k]) / float64(n)
	}
	return out, nil
}

// containerPid is the pid of the init of container id, as `state` reports it.
func containerPid(c runtimeCase, id string) (int, error) {
	cmd := exec.Command(c.bin, append(slices.Clone(c.args), "state", id)...)
	cmd.Env = append(cmd.Environ(), c.env...)
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("%s state %s: %w", c.name, id, err)
	}
	var st struct{ Pid int }
	if err := json.Unmarshal(out, &st); err != nil {
		return 0, err
	}
	return st.Pid, nil
}

// processPSS is the PSS (kB) of process pid.
func processPSS(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Pss:"); ok {
			return strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		}
	}
	return 0, fmt.Errorf("no Pss in /proc/%d/smaps_rollup", pid)
}

// slabKB is each slab cache's memory (kB) from /proc/slabinfo.
func slabKB() (map[string]float64, error) {
	data, err := os.ReadFile("/proc/slabinfo")
	if err != nil {
		return nil, err
	}
	m := map[string]float64{}
	for _, line := range strings.Split(string(data), "\n")[2:] {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		objs, err1 := strconv.ParseFloat(f[2], 64)
		size, err2 := strconv.ParseFloat(f[3], 64)
		if err1 == nil && err2 == nil {
			m[f[0]] = objs * size / 1024
		}
	}
	return m, nil
}

// topSlabs lists the k slab caches whose median growth per container is largest.
func topSlabs(fields map[string][]float64, k int) string {
	type cache struct {
		name string
		kb   float64
	}
	var all []cache
	for name, v := range fields {
		if c, ok := strings.CutPrefix(name, "slab:"); ok {
			all = append(all, cache{c, median(slices.Clone(v))})
		}
	}
	slices.SortFunc(all, func(a, b cache) int { return int(b.kb*1000 - a.kb*1000) })
	var out []string
	for _, c := range all[:min(k, len(all))] {
		out = append(out, fmt.Sprintf("%s %.1f", c.name, c.kb))
	}
	return strings.Join(out, ", ")
}

// settledMeminfo reads /proc/meminfo (kB) after freed memory had a moment to return (RCU-freed
// namespaces and slabs).
func settledMeminfo() (map[string]float64, error) {
	time.Sleep(2 * time.Second)
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		v, err := strconv.ParseFloat(fields[1], 64)
		if err == nil {
			m[strings.TrimSuffix(fields[0], ":")] = v
		}
	}
	return m, sc.Err()
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
