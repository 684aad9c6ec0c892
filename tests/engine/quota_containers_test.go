package engine

import (
	"strings"
	"sync"
	"testing"

	"bulwark.dev/bulwark/tests/internal/clitest"
)

// Container quotas (issue 10) through the daemonless CLI: 50 `bulwark run -d` processes at once
// on one state root against max_containers 10 leave exactly 10 containers, the other 40 refused
// with QUOTA_CONTAINERS_EXCEEDED (the tenant's quota lock orders count and reservation across
// processes); a stopped container still counts until it is removed, and its removal frees the
// slot.
func TestContainerQuotaParallelRuns(t *testing.T) {
	f := newFixture(t)
	pol := quotaPolicy(t, `"max_containers": 10`)
	const n = 50
	var mu sync.Mutex
	var started []string
	refused := 0
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := f.name(t, "quota")
			r := clitest.Run(t, f.root, "run", "-d", "--policy-dir", pol, "--name", name, "busybox:1", "sleep", "600")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case r.Code == 0:
				started = append(started, name)
			case r.Code == 125 && strings.Contains(r.Stderr, "QUOTA_CONTAINERS_EXCEEDED"):
				refused++
			default:
				t.Errorf("run %s: exit %d: %s", name, r.Code, r.Stderr)
			}
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, id := range started {
			clitest.Run(t, f.root, "rm", "-f", id)
		}
	})
	if len(started) != 10 || refused != n-10 {
		t.Fatalf("%d started, %d refused with the quota's code; want 10 and %d", len(started), refused, n-10)
	}
	if ids := strings.Fields(clitest.Must(t, f.root, "ps", "-a", "-q")); len(ids) != 10 {
		t.Fatalf("ps -a lists %d containers, want 10: %v", len(ids), ids)
	}
	// Stopped, it still exists and counts.
	clitest.Must(t, f.root, "stop", "-t", "1", started[0])
	if r := clitest.Run(t, f.root, "run", "--rm", "--policy-dir", pol, "busybox:1", "true"); r.Code != 125 || !strings.Contains(r.Stderr, "QUOTA_CONTAINERS_EXCEEDED") {
		t.Fatalf("run with a stopped container at the quota: exit %d: %s", r.Code, r.Stderr)
	}
	clitest.Must(t, f.root, "rm", started[0])
	started = started[1:]
	if r := clitest.Run(t, f.root, "run", "--rm", "--policy-dir", pol, "busybox:1", "true"); r.Code != 0 {
		t.Fatalf("run after a removal freed a slot: exit %d: %s", r.Code, r.Stderr)
	}
	refusals := 0
	for _, r := range f.query(t, "--type", "policy") {
		if r["action"] == "quota.refused" {
			refusals++
		}
	}
	if refusals < n-10 {
		t.Errorf("%d quota refusals audited, want at least %d", refusals, n-10)
	}
}

// The memory quota counts each container's memory limit — the one it asked for, or the default
// it gets — and refuses the container that would pass it, saying what to do; a foreground run's
// memory is free again once it is removed.
func TestContainerQuotaMemory(t *testing.T) {
	f := newFixture(t)
	pol := quotaPolicy(t, `"max_containers_memory": 104857600`) // 100 MiB
	first := f.name(t, "mem")
	clitest.Must(t, f.root, "run", "-d", "--policy-dir", pol, "--name", first, "--memory", "60m", "busybox:1", "sleep", "600")
	t.Cleanup(func() { clitest.Run(t, f.root, "rm", "-f", first) })
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--memory", "60m"}, "QUOTA_MEMORY_EXCEEDED"},
		{nil, "QUOTA_MEMORY_EXCEEDED"}, // the default limit (512 MiB) counts
		{[]string{"--memory", "40m"}, ""},
		{[]string{"--memory", "40m"}, ""}, // the first --rm run's 40 MiB are free again
	} {
		args := append(append([]string{"run", "--rm", "--policy-dir", pol}, c.args...), "busybox:1", "true")
		r := clitest.Run(t, f.root, args...)
		if c.want == "" && r.Code != 0 {
			t.Errorf("%v: exit %d: %s", c.args, r.Code, r.Stderr)
		}
		if c.want != "" && (r.Code != 125 || !strings.Contains(r.Stderr, c.want)) {
			t.Errorf("%v: exit %d, want 125 with %s: %s", c.args, r.Code, c.want, r.Stderr)
		}
	}
}
