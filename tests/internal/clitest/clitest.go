// Package clitest runs the bulwark command line for end-to-end tests: the binary `make build`
// left in $BULWARK_BIN, or else one built once for the whole test binary (with the helpers it
// executes from beside itself).
package clitest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

// Bin is the bulwark binary under test, set by Main.
var Bin string

// privateNSEnv marks a test binary that Main already re-executed in its private mount namespace.
const privateNSEnv = "BULWARK_CLITEST_PRIVATE_NS"

// Main is a test package's TestMain: it sets Bin, runs the tests and removes a binary it built.
// Run as root, the tests run in a private mount namespace of their own (the binary re-executed
// under unshare), so what the commands under test mount — volumes' loop filesystems, state roots'
// tmpfs — never shows in the host's mount table, and goes when the tests end.
func Main(m *testing.M) {
	if os.Geteuid() == 0 && os.Getenv(privateNSEnv) == "" {
		os.Exit(testenv.ReexecPrivateMountNS(privateNSEnv))
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	cleanup, err := testenv.PrivateRunRoots()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cleanup()
	if d := os.Getenv("BULWARK_BIN"); d != "" {
		Bin = filepath.Join(d, "bulwark")
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "bulwark-cli-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "build bulwark: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	Bin = filepath.Join(dir, "bulwark")
	// bulwark executes bulwark-policy (decisions its cache cannot answer), bulwark-seccomp
	// (seccomp programs its cache does not hold) and bulwark-admin (policy, bench) from beside
	// itself.
	for _, name := range []string{"bulwark", "bulwark-policy", "bulwark-seccomp", "bulwark-admin"} {
		out, err := exec.Command("go", "build", "-o", filepath.Join(dir, name), "bulwark.dev/bulwark/cmd/"+name).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", name, err, out)
			return 1
		}
	}
	return m.Run()
}

// Result is one bulwark invocation.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// Run executes `bulwark --root root args...` and returns its exit status and output; only a
// failure to start it fails the test.
func Run(t testing.TB, root string, args ...string) Result {
	t.Helper()
	cmd := exec.Command(Bin, append([]string{"--root", root}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	default:
		t.Fatalf("bulwark %v: %v", args, err)
	}
	return r
}

// Must runs `bulwark --root root args...` like Run and fails the test unless it exits 0; it
// returns the standard output.
func Must(t testing.TB, root string, args ...string) string {
	t.Helper()
	r := Run(t, root, args...)
	if r.Code != 0 {
		t.Fatalf("bulwark %v: exit %d\nstdout: %s\nstderr: %s", args, r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}
