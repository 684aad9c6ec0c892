package testenv

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// RaceRuns is how many runs a race regression makes: def in the default suite, or
// BULWARK_RACE_RUNS (e.g. 500, by hand).
func RaceRuns(t *testing.T, def int) int {
	if s := os.Getenv("BULWARK_RACE_RUNS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("BULWARK_RACE_RUNS=%q: want a positive count", s)
		}
		return n
	}
	return def
}

// SwapDirWithRootLink keeps exchanging <dir>/dir (a real directory holding etc/marker) with a
// symlink to /, atomically (RENAME_EXCHANGE), until stop is called: <dir>/dir/etc is a harmless
// directory or the host's /etc, depending on the instant it is walked.
func SwapDirWithRootLink(t *testing.T, dir string) (stop func()) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "dir", "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "dir", "etc", "marker"), []byte("harmless\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/", filepath.Join(dir, "swap")); err != nil {
		t.Fatal(err)
	}
	var done atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		a, b := filepath.Join(dir, "dir"), filepath.Join(dir, "swap")
		for !done.Load() {
			if err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE); err != nil {
				t.Errorf("swap: %v", err)
				return
			}
		}
	}()
	return func() { done.Store(true); wg.Wait() }
}

// RaceOutcome counts, for a racing bind source (SwapDirWithRootLink), how runs ended:
type RaceOutcome struct{ allowed, denied, host, other int }

// Add classifies one run by its exit code and output (the workload lists /mnt): the harmless
// directory was mounted, policy denied /etc, or the host's /etc was mounted (the hole).
func (o *RaceOutcome) Add(t *testing.T, code int, stdout, stderr string) {
	switch {
	case strings.Contains(stdout, "passwd") || strings.Contains(stdout, "os-release"):
		o.host++
		t.Errorf("host /etc was mounted (exit %d): /mnt lists %d names", code, strings.Count(stdout, "\n"))
	case code == 0 && strings.TrimSpace(stdout) == "marker":
		o.allowed++
	case code != 0 && strings.Contains(stderr, "denied by policy") && strings.Contains(stderr, "/etc"):
		o.denied++
	default:
		o.other++
		t.Logf("other outcome (exit %d): %s %s", code, stdout, stderr)
	}
}

// Check logs the counts and fails the test if any run mounted the host's /etc, ended otherwise
// than allowed or denied, or if the race was not exercised (no run of one kind).
func (o *RaceOutcome) Check(t *testing.T, what string) {
	t.Helper()
	n := o.allowed + o.denied + o.host + o.other
	t.Logf("%d racing %s: %d mounted the allowed directory, %d denied, %d host /etc mounted, %d other",
		n, what, o.allowed, o.denied, o.host, o.other)
	if o.host != 0 {
		t.Fatalf("host /etc mounted in %d of %d runs", o.host, n)
	}
	if o.other != 0 {
		// A spurious denial under the race (once: SECCOMP_UNCONFINED) is a decision on the wrong input.
		t.Errorf("%d runs ended neither allowed nor denied for /etc", o.other)
	}
	if o.allowed == 0 || o.denied == 0 {
		t.Fatalf("the race was not exercised (allowed %d, denied %d)", o.allowed, o.denied)
	}
}
