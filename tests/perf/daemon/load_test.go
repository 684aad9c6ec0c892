package daemon

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// loadClients, loadRunners and loadTenants shape the load: loadClients concurrent clients of
// loadTenants tenants, loadRunners of them creating, starting, waiting for and removing short
// sandboxes (busybox true), the others reading (ping, ps -a, inspect of their tenant's
// container) as fast as they are answered.
const (
	loadClients = 200
	loadRunners = 20
	loadTenants = 10
)

// loadSeconds is how long the load lasts: $BULWARK_PERF_DAEMON_SECONDS, default 20.
func loadSeconds() time.Duration {
	if n, err := strconv.Atoi(os.Getenv("BULWARK_PERF_DAEMON_SECONDS")); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	return 20 * time.Second
}

// loadStats collects latencies by operation and errors.
type loadStats struct {
	mu     sync.Mutex                 // guards the fields below
	lat    map[string][]time.Duration // operation → latencies
	errs   int
	sample []string // the first errors
	runs   int
}

func (s *loadStats) add(op string, d time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.errs++
		if len(s.sample) < 5 {
			s.sample = append(s.sample, op+": "+err.Error())
		}
		return
	}
	s.lat[op] = append(s.lat[op], d)
}

// timed runs one request, checks its status and records its latency under op.
func (s *loadStats) timed(c *http.Client, op, method, path, body string, want int) []byte {
	start := time.Now()
	status, out, err := do(c, method, path, body)
	if err == nil && status != want {
		err = fmt.Errorf("%s %s: %d %s", method, path, status, strings.TrimSpace(string(out)))
	}
	s.add(op, time.Since(start), err)
	if err != nil {
		return nil
	}
	return out
}

var (
	loadOnce   sync.Once
	loadReport []string
	loadMetric map[string]float64
)

// BenchmarkDaemonLoad puts 200 concurrent clients of 10 tenants on one bulwarkd for a bounded
// time (BULWARK_PERF_DAEMON_SECONDS, default 20): 180 read (ping, ps -a, inspect), 20 run short
// sandboxes (create, start, wait, remove). It prints requests/s, runs/s, p50/p99 latency by
// operation, the errors, the daemon's resident memory (now and its peak) and its descriptors and
// threads before and after; the load runs once whatever b.N is.
func BenchmarkDaemonLoad(b *testing.B) {
	loadOnce.Do(func() { loadReport, loadMetric = daemonLoad(b) })
	if loadReport == nil {
		b.Skip("the load did not run")
	}
	for k, v := range loadMetric {
		b.ReportMetric(v, k)
	}
	b.ReportMetric(0, "ns/op")
	if b.N > 1 || testing.Verbose() {
		fmt.Println(strings.Join(loadReport, "\n"))
	}
}

func daemonLoad(b *testing.B) ([]string, map[string]float64) {
	e := startDaemon(b, loadTenants, "warn")
	pid := e.cmd.Process.Pid
	clients := make([]*http.Client, loadTenants)
	sleepers := make([]string, loadTenants)
	for i, tn := range e.tenants {
		clients[i] = e.client(tn)
		status, out, err := do(clients[i], "POST", "/v1.41/containers/create", `{"Image": "busybox:1", "Cmd": ["sleep", "600"]}`)
		var r struct{ ID string }
		if err != nil || status != http.StatusCreated || json.Unmarshal(out, &r) != nil {
			b.Fatalf("create %s's container: %d %s %v", tn.name, status, out, err)
		}
		if status, out, err := do(clients[i], "POST", "/v1.41/containers/"+r.ID+"/start", ""); err != nil || status != http.StatusNoContent {
			b.Fatalf("start %s's container: %d %s %v", tn.name, status, out, err)
		}
		sleepers[i] = r.ID
	}
	time.Sleep(time.Second)
	before := procStatus(pid, "VmRSS", "Threads")
	fdsBefore := openFDs(pid)

	st := &loadStats{lat: map[string][]time.Duration{}}
	deadline := time.Now().Add(loadSeconds())
	var wg sync.WaitGroup
	loaders := make([]*http.Client, loadClients)
	for i := range loadClients {
		t := i % loadTenants
		cl := e.client(e.tenants[t]) // each client its own connections
		loaders[i] = cl
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i < loadRunners {
				for time.Now().Before(deadline) {
					st.run(cl)
				}
				return
			}
			for time.Now().Before(deadline) {
				switch rand.IntN(3) {
				case 0:
					st.timed(cl, "ping", "GET", "/_ping", "", http.StatusOK)
				case 1:
					st.timed(cl, "ps", "GET", "/v1.41/containers/json?all=1", "", http.StatusOK)
				default:
					st.timed(cl, "inspect", "GET", "/v1.41/containers/"+sleepers[t]+"/json", "", http.StatusOK)
				}
			}
		}()
	}
	start := time.Now()
	peak := int64(0)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for sampling := true; sampling; {
		select {
		case <-done:
			sampling = false
		case <-time.After(200 * time.Millisecond):
			if v := procStatus(pid, "VmRSS")["VmRSS"]; v > peak {
				peak = v
			}
		}
	}
	elapsed := time.Since(start)
	during := procStatus(pid, "VmRSS", "VmHWM")

	for i, id := range sleepers {
		do(clients[i], "DELETE", "/v1.41/containers/"+id+"?force=1", "")
	}
	// The clients hang up: what the daemon still holds then is its own.
	for _, c := range append(loaders, clients...) {
		c.CloseIdleConnections()
	}
	time.Sleep(2 * time.Second)
	after := procStatus(pid, "VmRSS", "Threads")
	fdsAfter := openFDs(pid)
	left, _ := os.ReadDir(filepath.Join(e.root, "engine"))

	requests := 0
	for _, ds := range st.lat {
		requests += len(ds)
	}
	report := []string{
		fmt.Sprintf("bulwarkd under load: %d clients of %d tenants (%d running sandboxes, %d reading) for %.1f s",
			loadClients, loadTenants, loadRunners, loadClients-loadRunners, elapsed.Seconds()),
		fmt.Sprintf("  %d requests, %.0f requests/s; %d runs (create+start+wait+rm), %.2f runs/s; %d errors %v",
			requests, float64(requests)/elapsed.Seconds(), st.runs, float64(st.runs)/elapsed.Seconds(), st.errs, st.sample),
	}
	metrics := map[string]float64{
		"req/s": float64(requests) / elapsed.Seconds(), "runs/s": float64(st.runs) / elapsed.Seconds(),
		"errors": float64(st.errs), "rss-peak-MiB": float64(peak) / 1024,
	}
	for _, op := range []string{"ping", "ps", "inspect", "create", "start", "wait", "remove"} {
		ds := st.lat[op]
		report = append(report, fmt.Sprintf("  %-8s n=%-6d p50 %7.1f ms   p99 %7.1f ms", op, len(ds), percentile(ds, 50), percentile(ds, 99)))
		metrics[op+"-p50-ms"] = percentile(ds, 50)
		metrics[op+"-p99-ms"] = percentile(ds, 99)
	}
	report = append(report,
		fmt.Sprintf("  daemon RSS: %.1f MiB before, peak %.1f MiB sampled (VmHWM %.1f MiB), %.1f MiB after",
			float64(before["VmRSS"])/1024, float64(peak)/1024, float64(during["VmHWM"])/1024, float64(after["VmRSS"])/1024),
		fmt.Sprintf("  daemon fds %d -> %d, threads %d -> %d; containers left in the state root: %d",
			fdsBefore, fdsAfter, before["Threads"], after["Threads"], len(left)))
	return report, metrics
}

// run creates, starts, waits for and removes one short sandbox.
func (s *loadStats) run(c *http.Client) {
	out := s.timed(c, "create", "POST", "/v1.41/containers/create", `{"Image": "busybox:1", "Cmd": ["true"]}`, http.StatusCreated)
	var r struct{ ID string }
	if out == nil || json.Unmarshal(out, &r) != nil {
		return
	}
	ok := s.timed(c, "start", "POST", "/v1.41/containers/"+r.ID+"/start", "", http.StatusNoContent) != nil
	if ok {
		ok = s.timed(c, "wait", "POST", "/v1.41/containers/"+r.ID+"/wait", "", http.StatusOK) != nil
	}
	if s.timed(c, "remove", "DELETE", "/v1.41/containers/"+r.ID+"?force=1", "", http.StatusNoContent) != nil && ok {
		s.mu.Lock()
		s.runs++
		s.mu.Unlock()
	}
}
