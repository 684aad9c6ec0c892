// Package testenv is the shared harness of Bulwark's integration and attack tests: it builds the
// static probe, lays out busybox-static bundles, writes specs, and checks that a test left no
// mount, cgroup, process, state directory or id range behind.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"bulwark.dev/bulwark/internal/runroot"
	"bulwark.dev/bulwark/tests/internal/report"
	"golang.org/x/sys/unix"
)

// BinEnv names the directory of prebuilt binaries (bulwark-runc, bulwark-probe) that
// `make test-integration` passes to the tests.
const BinEnv = "BULWARK_BIN"

var (
	probeOnce sync.Once
	probePath string
	probeErr  error
	buildDir  string // removed by Main
)

// StateRootEnv names bulwark-runc's persistent state root (policy bundle revision, audit log).
const StateRootEnv = "BULWARK_STATE_ROOT"

// Main runs the tests and removes what the package built for them; use it from TestMain. The
// bulwark-runc binaries the tests run keep their audit log in a temporary state root, never the
// host's /var/lib/bulwark.
func Main(m *testing.M) int {
	cleanup, err := PrivateRunRoots()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		return 1
	}
	defer cleanup()
	if os.Getenv(StateRootEnv) == "" {
		dir, err := os.MkdirTemp("", "bulwark-state-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "testenv: temporary state root:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		os.Setenv(StateRootEnv, dir)
	}
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	return code
}

// PrivateRunRoots points runroot.BaseEnv at a fresh temporary directory (unless it is set) for
// this process and every bulwark, bulwarkd and engine it starts, so that no test writes its run
// roots under the host's /run/bulwark; cleanup removes the directory.
func PrivateRunRoots() (cleanup func(), err error) {
	if os.Getenv(runroot.BaseEnv) != "" {
		return func() {}, nil
	}
	dir, err := os.MkdirTemp("", "bulwark-run-roots-")
	if err != nil {
		return nil, fmt.Errorf("temporary run roots: %w", err)
	}
	os.Setenv(runroot.BaseEnv, dir)
	return func() { os.RemoveAll(dir) }, nil
}

// RequireRoot skips tests that create real sandboxes when not run as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("creating sandboxes needs root (user namespaces with a subordinate range, cgroups, mounts)")
	}
}

// RuntimeBin returns $BULWARK_BIN/bulwark-runc, skipping the test when BULWARK_BIN is unset.
func RuntimeBin(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(BinEnv)
	if dir == "" {
		t.Skip(BinEnv + " is unset: run `make test-integration` to test the bulwark-runc binary")
	}
	p := filepath.Join(dir, "bulwark-runc")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is set but has no bulwark-runc: %v", BinEnv, err)
	}
	return p
}

// Probe returns the path of a static probe binary: $BULWARK_BIN/bulwark-probe when set, else one
// built once per test binary with CGO_ENABLED=0.
func Probe(t testing.TB) string {
	t.Helper()
	probeOnce.Do(func() {
		if dir := os.Getenv(BinEnv); dir != "" {
			p := filepath.Join(dir, "bulwark-probe")
			if _, err := os.Stat(p); err == nil {
				probePath = p
				return
			}
		}
		probePath, probeErr = buildProbe()
	})
	if probeErr != nil {
		if os.Geteuid() != 0 {
			// Unprivileged runs only exercise the harness; their Go toolchain may not reach the
			// module cache of the user who set the machine up.
			t.Skipf("cannot build the probe as uid %d: %v", os.Geteuid(), probeErr)
		}
		t.Fatalf("build probe: %v", probeErr)
	}
	return probePath
}

func buildProbe() (string, error) {
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("cannot locate the module source")
	}
	modRoot := filepath.Join(filepath.Dir(self), "..", "..", "..")
	dir, err := os.MkdirTemp("", "bulwark-probe-build-")
	if err != nil {
		return "", err
	}
	buildDir = dir
	out := filepath.Join(dir, "bulwark-probe")
	cmd := exec.Command("go", "build", "-o", out, "./tests/probe")
	cmd.Dir = modRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./tests/probe: %v\n%s", err, b)
	}
	return out, nil
}

// UniqueID returns a container id derived from the test name plus random bits, so leak checks
// can find anything left under it even while other packages' tests run.
func UniqueID(t testing.TB) string {
	var b [4]byte
	rand.Read(b[:])
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r - 'A' + 'a'
		}
		return -1
	}, strings.TrimPrefix(t.Name(), "Test"))
	if len(name) > 16 {
		name = name[:16]
	}
	return "bwt-" + name + "-" + hex.EncodeToString(b[:])
}

// ParseReport decodes the probe's output, failing the test with the raw text when it is not JSON.
func ParseReport(t testing.TB, out []byte) *report.Report {
	t.Helper()
	var r report.Report
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("probe output is not a report (%v):\n%s", err, out)
	}
	for s, e := range r.Errors {
		t.Logf("probe section %s: %s", s, e)
	}
	return &r
}

// TmpfsDir is a temporary directory on a tmpfs (/dev/shm), removed when the test ends; it skips
// the test where /dev/shm is not a tmpfs. A state or run root there is one as /run's would be.
func TmpfsDir(t testing.TB) string {
	t.Helper()
	var shm unix.Statfs_t
	if err := unix.Statfs("/dev/shm", &shm); err != nil || shm.Type != unix.TMPFS_MAGIC {
		t.Skipf("/dev/shm is not a tmpfs (%v)", err)
	}
	dir, err := os.MkdirTemp("/dev/shm", "bulwark-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
