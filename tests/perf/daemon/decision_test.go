package daemon

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"bulwark.dev/bulwark/tests/internal/clitest"
)

// decisionRuns is how many `docker run --rm busybox:1 true` the decision benchmark times.
const decisionRuns = 20

var (
	decisionOnce   bool
	decisionReport []string
	decisionMetric map[string]float64
)

// BenchmarkDecisionCost runs `docker run --rm busybox:1 true` through bulwarkd (the stock docker
// CLI, as a tenant) and sets what its decisions cost against the whole run: the run policy's
// decisions (each policy.decision record of the audit log, with its duration) and the API
// policy's (one per API call, timed by the daemon and logged with the call), both prepared once
// per load. It prints the medians, one decision's share of a run against the 2% target, and all
// of a run's decisions together; it runs once whatever b.N.
func BenchmarkDecisionCost(b *testing.B) {
	if !decisionOnce {
		decisionOnce = true
		decisionReport, decisionMetric = decisionCost(b)
	}
	if decisionReport == nil {
		b.Skip("the benchmark did not run")
	}
	for k, v := range decisionMetric {
		b.ReportMetric(v, k)
	}
	b.ReportMetric(0, "ns/op")
	if b.N > 1 || testing.Verbose() {
		fmt.Println(strings.Join(decisionReport, "\n"))
	}
}

// window is one timed run.
type window struct{ start, end time.Time }

func decisionCost(b *testing.B) ([]string, map[string]float64) {
	if _, err := exec.LookPath("docker"); err != nil {
		b.Skip("the docker CLI is not installed")
	}
	e := startDaemon(b, 1, "debug")
	tn := e.tenants[0]
	docker := func(args ...string) error {
		cmd := exec.Command("docker", args...)
		cmd.Env = []string{"DOCKER_HOST=unix://" + e.sock, "PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + tn.home}
		cmd.Dir = tn.home
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(tn.uid), Gid: uint32(tn.gid), Groups: []uint32{uint32(e.group)}}}
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("docker %v: %v: %s", args, err, out)
		}
		return nil
	}
	if err := docker("run", "--rm", "busybox:1", "true"); err != nil { // warm: the policy prepared
		b.Fatal(err)
	}
	var wins []window
	for range decisionRuns {
		w := window{start: time.Now()}
		if err := docker("run", "--rm", "busybox:1", "true"); err != nil {
			b.Fatal(err)
		}
		w.end = time.Now()
		wins = append(wins, w)
		time.Sleep(50 * time.Millisecond) // nothing of one run's tail in the next window
	}
	runPolicy := make([]time.Duration, len(wins))
	apiPolicy := make([]time.Duration, len(wins))
	runDecisions, apiCalls := make([]int, len(wins)), make([]int, len(wins))
	at := func(t time.Time) int {
		for i, w := range wins {
			if !t.Before(w.start) && !t.After(w.end) {
				return i
			}
		}
		return -1
	}
	out := clitest.Must(b, e.root, "audit", "query", "--type", "policy", "--tenant", tn.name)
	dec := json.NewDecoder(strings.NewReader(out))
	for {
		var r struct {
			Time   time.Time         `json:"time"`
			Action string            `json:"action"`
			Attrs  map[string]string `json:"attrs"`
		}
		if err := dec.Decode(&r); err != nil {
			break
		}
		if i := at(r.Time); i >= 0 && r.Action == "decision" {
			ns, _ := strconv.ParseInt(r.Attrs["duration_ns"], 10, 64)
			runPolicy[i] += time.Duration(ns)
			runDecisions[i]++
		}
	}
	logf, err := os.Open(e.logPath)
	if err != nil {
		b.Fatal(err)
	}
	defer logf.Close()
	sc := bufio.NewScanner(logf)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct {
			Time     time.Time `json:"time"`
			Msg      string    `json:"msg"`
			Decision int64     `json:"decision"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Msg != "call" {
			continue
		}
		if i := at(l.Time); i >= 0 {
			apiPolicy[i] += time.Duration(l.Decision)
			apiCalls[i]++
		}
	}
	runs, shares := make([]float64, len(wins)), make([]float64, len(wins))
	for i, w := range wins {
		d := w.end.Sub(w.start)
		runs[i] = float64(d.Microseconds()) / 1000
		shares[i] = 100 * float64(runPolicy[i]+apiPolicy[i]) / float64(d)
	}
	ms := func(ds []time.Duration) float64 {
		f := make([]float64, len(ds))
		for i, d := range ds {
			f[i] = float64(d.Microseconds()) / 1000
		}
		return med(f)
	}
	ints := func(ns []int) float64 {
		f := make([]float64, len(ns))
		for i, n := range ns {
			f[i] = float64(n)
		}
		return med(f)
	}
	share := med(shares)
	run := med(runs)
	perRun, perAPI := ms(runPolicy)/ints(runDecisions), ms(apiPolicy)/ints(apiCalls)
	// The target is the issue's: a decision through the daemon well under 2% of a run.
	verdict := "met"
	if 100*max(perRun, perAPI)/run >= 2 {
		verdict = "NOT met"
	}
	report := []string{
		fmt.Sprintf("decisions of docker run --rm busybox:1 true through bulwarkd, %d runs (medians):", len(wins)),
		fmt.Sprintf("  whole run %.1f ms; run policy %.2f ms (%.0f decisions); API policy %.2f ms (%.0f calls)",
			run, ms(runPolicy), ints(runDecisions), ms(apiPolicy), ints(apiCalls)),
		fmt.Sprintf("  one run decision %.2f ms = %.2f%% of the run; one API decision %.3f ms = %.2f%% (target, one decision under 2%% of a run: %s)",
			perRun, 100*perRun/run, perAPI, 100*perAPI/run, verdict),
		fmt.Sprintf("  all of a run's decisions together = %.2f%% of the run", share),
	}
	return report, map[string]float64{"run-ms": med(runs), "run-policy-ms": ms(runPolicy), "api-policy-ms": ms(apiPolicy), "decisions-%": share}
}

func med(f []float64) float64 {
	if len(f) == 0 {
		return 0
	}
	s := append([]float64(nil), f...)
	sort.Float64s(s)
	return s[len(s)/2]
}
