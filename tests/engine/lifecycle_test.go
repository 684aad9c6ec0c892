package engine

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestParallelRuns: 50 concurrent `bulwark run --rm` all succeed, the audit chain written by 50
// processes at once verifies, and nothing is left.
func TestParallelRuns(t *testing.T) {
	f := newFixture(t)
	n := 50
	if s := os.Getenv("BULWARK_PARALLEL_RUNS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = f.name(t, "par")
	}
	start := time.Now()
	var wg sync.WaitGroup
	results := make([]result, n)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = bulwark(t, f.root, "run", "--rm", "--name", ids[i], "busybox:1", "sh", "-c", "echo "+ids[i])
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	for i, r := range results {
		if r.code != 0 || r.stdout != ids[i]+"\n" {
			t.Errorf("run %s: exit %d, stdout %q, stderr %s", ids[i], r.code, r.stdout, r.stderr)
		}
	}
	t.Logf("%d parallel runs in %v", n, elapsed)
	out := must(t, f.root, "audit", "verify")
	t.Log(strings.TrimSpace(out))
	for _, id := range ids {
		if got := actions(f.records(t, id)); len(got) != 10 {
			t.Errorf("%s: %d audit records, want 10: %v", id, len(got), got)
		}
	}
	f.assertNothingLeft(t)
	// Every id range was released: the allocator holds none.
	b, _ := os.ReadFile(filepath.Join(f.root, "idmap", "ranges.json"))
	for _, id := range ids {
		if strings.Contains(string(b), id) {
			t.Errorf("id range of %s still allocated", id)
		}
	}
}

// TestDetachedLifecycle drives every container command on a detached container.
func TestDetachedLifecycle(t *testing.T) {
	f := newFixture(t)
	id := f.name(t, "det")
	out := must(t, f.root, "run", "-d", "--name", id, "-e", "GREETING=hi", "busybox:1",
		"sh", "-c", `i=0; while :; do echo "$GREETING $i"; echo "err $i" >&2; i=$((i+1)); sleep 0.1; done`)
	if strings.TrimSpace(out) != id {
		t.Fatalf("run -d printed %q, want the id %s", out, id)
	}
	waitFor(t, func() bool { return strings.Contains(must(t, f.root, "logs", id), "hi 2") })

	if ps := must(t, f.root, "ps"); !strings.Contains(ps, id) || !strings.Contains(ps, "running") {
		t.Errorf("ps:\n%s", ps)
	}
	if q := must(t, f.root, "ps", "-q"); strings.TrimSpace(q) != id {
		t.Errorf("ps -q: %q", q)
	}
	r := bulwark(t, f.root, "logs", id)
	if !strings.Contains(r.stdout, "hi 0\n") || !strings.Contains(r.stderr, "err 0\n") || strings.Contains(r.stdout, "err 0") {
		t.Errorf("logs: stdout %q stderr %q", r.stdout, r.stderr)
	}
	if out := must(t, f.root, "exec", id, "sh", "-c", "echo exec-$GREETING; id -u"); out != "exec-hi\n0\n" {
		t.Errorf("exec output %q", out)
	}
	if r := bulwark(t, f.root, "exec", id, "sh", "-c", "exit 7"); r.code != 7 {
		t.Errorf("exec exit %d, want 7", r.code)
	}
	var stats map[string]struct {
		MemoryUsage uint64 `json:"memoryUsage"`
		PidsCurrent uint64 `json:"pidsCurrent"`
	}
	if err := json.Unmarshal([]byte(must(t, f.root, "stats", "--json", id)), &stats); err != nil {
		t.Fatal(err)
	}
	if s := stats[id]; s.MemoryUsage == 0 || s.PidsCurrent == 0 {
		t.Errorf("stats: %+v", s)
	}
	must(t, f.root, "pause", id)
	if c := inspect(t, f, id); c.Status != "paused" {
		t.Errorf("after pause: %s", c.Status)
	}
	must(t, f.root, "unpause", id)
	if c := inspect(t, f, id); c.Status != "running" {
		t.Errorf("after unpause: %s", c.Status)
	}
	if r := bulwark(t, f.root, "rm", id); r.code == 0 {
		t.Errorf("rm of a running container succeeded")
	}
	must(t, f.root, "stop", "-t", "1", id)
	waitFor(t, func() bool { c := inspect(t, f, id); return c.Exit != nil })
	c := inspect(t, f, id)
	if c.Status != "stopped" || c.Exit.Code != 137 || c.Exit.Signal != "SIGKILL" {
		t.Errorf("after stop: status %s exit %+v", c.Status, c.Exit)
	}
	if ps := must(t, f.root, "ps"); strings.Contains(ps, id) {
		t.Errorf("ps shows a stopped container:\n%s", ps)
	}
	if ps := must(t, f.root, "ps", "-a"); !strings.Contains(ps, "exited (137)") {
		t.Errorf("ps -a:\n%s", ps)
	}
	must(t, f.root, "rm", id)
	f.assertNothingLeft(t)

	story := strings.Join(actions(f.records(t, id)), " ")
	for _, a := range []string{"container.create", "container.start", "policy.decision", "container.exec.start",
		"container.exec", "container.pause", "container.resume", "container.stop", "container.exit", "container.delete"} {
		if !strings.Contains(story, a) {
			t.Errorf("audit story lacks %s: %s", a, story)
		}
	}
	must(t, f.root, "audit", "verify")
}

// TestDetachedRemoveAndKill: --rm -d removes itself when the workload exits; kill delivers a
// signal.
func TestDetachedRemoveAndKill(t *testing.T) {
	f := newFixture(t)
	short := f.name(t, "rmd")
	must(t, f.root, "run", "-d", "--rm", "--name", short, "busybox:1", "true")
	waitFor(t, func() bool { return bulwark(t, f.root, "inspect", short).code != 0 })

	long := f.name(t, "kill")
	must(t, f.root, "run", "-d", "--name", long, "busybox:1", "sleep", "60")
	must(t, f.root, "kill", long)
	waitFor(t, func() bool { return inspect(t, f, long).Exit != nil })
	if c := inspect(t, f, long); c.Exit.Code != 137 {
		t.Errorf("killed: exit %+v", c.Exit)
	}
	must(t, f.root, "rm", long)
	f.assertNothingLeft(t)
}

type inspected struct {
	Status string `json:"status"`
	Exit   *struct {
		Code   int    `json:"code"`
		Signal string `json:"signal"`
	} `json:"exit"`
}

func inspect(t *testing.T, f *fixture, id string) inspected {
	t.Helper()
	var out []inspected
	if err := json.Unmarshal([]byte(must(t, f.root, "inspect", id)), &out); err != nil || len(out) != 1 {
		t.Fatalf("inspect %s: %v", id, err)
	}
	return out[0]
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 15 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
