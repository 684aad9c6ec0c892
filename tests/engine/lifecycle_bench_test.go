package engine

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"bulwark.dev/bulwark/tests/internal/clitest"
)

// BenchmarkSupervisionMemory (issue 10) runs BULWARK_SUPERVISION_N (default 200) idle detached
// containers and reports what supervising them costs: the private memory (smem's USS: the
// Private_* lines of /proc/PID/smaps_rollup) of the state root's supervisor processes, per
// container. With BULWARK_OLD_BIN (a bulwark binary of before the supervisor), the same for its
// per-container __monitor processes, side by side. A benchmark, not a test: run it with
//
//	BULWARK_BIN=$PWD/bin go test -run '^$' -bench SupervisionMemory -benchtime 1x ./tests/engine/
func BenchmarkSupervisionMemory(b *testing.B) {
	n := 200
	if s := os.Getenv("BULWARK_SUPERVISION_N"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	f := newFixture(b)
	ids := startIdle(b, f, clitest.Bin, n)
	total, procs := 0, supervisorProcs(b, f.root)
	for _, pids := range procs {
		for _, pid := range pids {
			total += privateBytes(b, pid)
		}
	}
	per := float64(total) / float64(n)
	b.ReportMetric(per, "private-B/container")
	b.Logf("supervisor: %d containers, %d supervision processes, %.1f MiB private in all, %.1f KiB per container",
		n, len(procs["reaper"])+len(procs["worker"]), float64(total)/(1<<20), per/1024)
	removeAll(b, f, clitest.Bin, ids)

	old := os.Getenv("BULWARK_OLD_BIN")
	if old == "" {
		return
	}
	of := newFixture(b)
	m := min(n, 20) // one process each: a sample is enough
	ids = startIdle(b, of, old, m)
	total = 0
	pids := monitorProcs(of.root)
	for _, pid := range pids {
		total += privateBytes(b, pid)
	}
	b.ReportMetric(float64(total)/float64(len(pids)), "old-private-B/container")
	b.Logf("old per-container monitor: %d containers, %d monitors, %.1f KiB private per container",
		m, len(pids), float64(total)/float64(len(pids))/1024)
	// The old monitors record their exits after rm -f has returned (they could write a record
	// again behind it): their leftovers are removed with the binary under test.
	forEach(ids, func(id string) { runBin(old, of.root, "rm", "-f", id) })
	removeAll(b, of, clitest.Bin, ids)
}

// startIdle runs n idle detached containers with bin, four at a time.
func startIdle(b *testing.B, f *fixture, bin string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = f.name(b, "idle")
	}
	forEach(ids, func(id string) {
		if r := runBin(bin, f.root, "run", "-d", "--name", id, "busybox:1", "sleep", "100000"); r != nil {
			b.Errorf("run %s: %v", id, r)
		}
	})
	if b.Failed() {
		b.FailNow()
	}
	return ids
}

func removeAll(b *testing.B, f *fixture, bin string, ids []string) {
	forEach(ids, func(id string) { runBin(bin, f.root, "rm", "-f", id) })
	f.assertNothingLeft(b)
}

func forEach(ids []string, fn func(string)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for _, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			fn(id)
		}()
	}
	wg.Wait()
}

// runBin runs `bin --root root args...` (the old binary or the one under test).
func runBin(bin, root string, args ...string) error {
	out, err := exec.Command(bin, append([]string{"--root", root}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}

// monitorProcs lists the old binary's per-container monitors of root.
func monitorProcs(root string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		args := strings.Split(string(b), "\x00")
		if slices.Contains(args, "__monitor") && slices.Contains(args, root) {
			out = append(out, pid)
		}
	}
	return out
}

// privateBytes sums the Private_* lines of a process's smaps_rollup.
func privateBytes(b *testing.B, pid int) int {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	total := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || !strings.HasPrefix(k, "Private_") {
			continue
		}
		kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		total += kb << 10
	}
	return total
}
