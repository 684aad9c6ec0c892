package compiler

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"bulwark.dev/bulwark/sandbox/internal/seccomp"
	"golang.org/x/sys/unix"
)

// The enforcement tests re-execute the test binary in a helper mode: a filter cannot be removed
// once loaded, so each check runs in a fresh process that loads the programs and reports back.
const (
	envMode = "BULWARK_SECCOMP_HELPER"
	envBPF  = "BULWARK_SECCOMP_BPF" // list of files with raw programs, loaded in order
	envN    = "BULWARK_SECCOMP_N"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(envMode); mode != "" {
		os.Exit(helperMain(mode))
	}
	os.Exit(m.Run())
}

func helperMain(mode string) int {
	var progs []*seccomp.Program
	for _, path := range filepath.SplitList(os.Getenv(envBPF)) {
		raw, err := os.ReadFile(path)
		if err == nil {
			var p *seccomp.Program
			if p, err = seccomp.FromBytes("", raw); err == nil {
				progs = append(progs, p)
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 2
		}
	}
	// The bench mode measures the same loop before and after loading, in one process, so the
	// difference is the filter's cost and not noise between processes on a shared machine.
	n, _ := strconv.Atoi(os.Getenv(envN))
	var before int64
	if mode == "bench" {
		before = getppidLoop(n)
	}
	start := time.Now()
	for _, p := range progs {
		if err := p.Load(); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 3
		}
	}
	loadNs := time.Since(start).Nanoseconds()
	switch mode {
	case "probe":
		out := runProbes(len(progs) == 0)
		out["threads"] = int(newThreads(4))
		if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
			return 4
		}
	case "exec":
		args := flagArgs()
		if err := syscall.Exec(args[0], args, os.Environ()); err != nil {
			fmt.Fprintln(os.Stderr, "helper: exec:", err)
			return 5
		}
	case "bench":
		fmt.Printf("%d %d %d\n", before, getppidLoop(n), loadNs)
	default:
		return 6
	}
	return 0
}

func getppidLoop(n int) int64 {
	t0 := time.Now()
	for range n {
		unix.Getppid()
	}
	return time.Since(t0).Nanoseconds()
}

// flagArgs returns the helper's arguments after "--".
func flagArgs() []string {
	for i, a := range os.Args {
		if a == "--" {
			return os.Args[i+1:]
		}
	}
	return nil
}

// newThreads makes the runtime start n new OS threads. In this cgo binary that goes through
// glibc's pthread_create, which tries clone3 first and falls back to clone only on ENOSYS.
func newThreads(n int) unix.Errno {
	ready := make(chan int)
	release := make(chan struct{})
	for range n {
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			ready <- unix.Gettid()
			<-release
		}()
	}
	tids := map[int]bool{}
	for range n {
		tids[<-ready] = true
	}
	close(release)
	if len(tids) != n {
		return unix.EAGAIN
	}
	return 0
}

// runHelper runs the test binary in mode with progs loaded and returns its stdout.
func runHelper(t testing.TB, mode string, progs []*seccomp.Program, env []string, args ...string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	var paths []string
	for i, p := range progs {
		path := filepath.Join(dir, fmt.Sprintf("prog%d.bpf", i))
		if err := os.WriteFile(path, p.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
	}
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), envMode+"="+mode, envBPF+"="+strings.Join(paths, string(filepath.ListSeparator)))
	cmd.Env = append(cmd.Env, env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("helper %s: %w (stderr: %s)", mode, err, stderr.String())
	}
	return string(out), nil
}
