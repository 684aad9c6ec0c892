package attacks

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/sandbox"
	"bulwark.dev/bulwark/tests/internal/testenv"
)

// TestCVE_2024_21626 replays runc's "Leaky Vessels" fd leak: the runtime held a descriptor on a
// host directory (/sys/fs/cgroup) open across exec, and a spec with cwd /proc/self/fd/N put the
// container process's working directory on the host, outside its root. Here the test process
// itself holds host directory descriptors without O_CLOEXEC, as a careless caller would.
func TestCVE_2024_21626(t *testing.T) {
	e := testenv.NewEnv(t, "tenant-attacks")
	var leaked []int
	for _, p := range []string{"/sys/fs/cgroup", "/", "/etc"} {
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY, 0) // no O_CLOEXEC on purpose
		if err != nil {
			t.Fatalf("open %s: %v", p, err)
		}
		leaked = append(leaked, fd)
		t.Cleanup(func() { unix.Close(fd) })
	}

	t.Run("no-host-fd-inside", func(t *testing.T) {
		e := e.For(t)
		r, _ := e.Run(testenv.Spec(testenv.ProbeArgs("fds", "cwd")))
		for fd, target := range r.FDs {
			if fd != "0" && fd != "1" && fd != "2" {
				t.Errorf("fd %s reachable inside: %s", fd, target)
			}
		}
		if !r.Cwd.InRoot {
			t.Errorf("cwd %+v not inside the root", r.Cwd)
		}
	})

	// cwd through /proc/self/fd/N for the leaked numbers and the usual low ones: either refused
	// at create/start, or the working directory is inside the container's root.
	seen := map[int]bool{}
	low := []int{3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	for _, n := range append(leaked, low...) {
		if seen[n] {
			continue
		}
		seen[n] = true
		t.Run(fmt.Sprintf("cwd-proc-self-fd-%d", n), func(t *testing.T) {
			e := e.For(t)
			spec := testenv.Spec(testenv.ProbeArgs("cwd", "fds"), testenv.WithCwd(fmt.Sprintf("/proc/self/fd/%d", n)))
			c, err := e.Create(nil, spec)
			if err != nil {
				assertCwdRefusal(t, err)
				return
			}
			if err := c.Start(); err != nil {
				assertCwdRefusal(t, err)
				return
			}
			code := c.WaitExit()
			if code != 0 {
				t.Logf("process did not run (exit %d)%s", code, c.ErrText())
				return
			}
			r := c.Report()
			if !r.Cwd.InRoot || strings.HasPrefix(r.Cwd.Path, "(unreachable)") || strings.HasPrefix(r.Cwd.Path, "/sys") {
				t.Errorf("ESCAPE: working directory %+v is outside the container's root", r.Cwd)
			}
			for fd, target := range r.FDs {
				if fd != "0" && fd != "1" && fd != "2" {
					t.Errorf("fd %s reachable inside: %s", fd, target)
				}
			}
		})
	}

	// The exec path of the same CVE: a process exec'd into a running container with cwd
	// /proc/self/fd/N, where N may be a descriptor the runtime's exec helper holds.
	t.Run("exec-cwd", func(t *testing.T) {
		e := e.For(t)
		c := e.MustCreate(nil, testenv.Spec([]string{"/bin/sleep", "30"}))
		if err := c.Start(); err != nil {
			t.Fatalf("start: %v%s", err, c.ErrText())
		}
		for _, n := range append(leaked, low...) {
			out := e.OutFile("exec-out")
			p, err := c.Exec(&specs.Process{Args: testenv.ProbeArgs("cwd", "fds"), Cwd: fmt.Sprintf("/proc/self/fd/%d", n),
				Env: []string{"PATH=/bin"}}, sandbox.IO{Stdout: out})
			out.Close()
			if err != nil {
				assertCwdRefusal(t, err)
				continue
			}
			if code, err := p.Wait(); err != nil || code != 0 {
				t.Logf("fd %d: exec'd process did not run: exit %d %v", n, code, err)
				continue
			}
			b, err := os.ReadFile(out.Name())
			if err != nil {
				t.Fatal(err)
			}
			r := testenv.ParseReport(t, b)
			if !r.Cwd.InRoot || strings.HasPrefix(r.Cwd.Path, "(unreachable)") {
				t.Errorf("ESCAPE: exec'd process with cwd /proc/self/fd/%d has working directory %+v outside the root", n, r.Cwd)
			}
			for fd, target := range r.FDs {
				if fd != "0" && fd != "1" && fd != "2" {
					t.Errorf("fd %s reachable in the exec'd process: %s", fd, target)
				}
			}
		}
		c.Signal(syscall.SIGKILL, true)
		c.WaitExit()
	})
}

// assertCwdRefusal checks that a refusal is the child's cwd step failing on a path that is not
// a directory of the container (ENOTDIR or ENOENT inside its own /proc), not an unrelated error.
func assertCwdRefusal(t *testing.T, err error) {
	t.Helper()
	var ie *sandbox.InitError
	if !errors.As(err, &ie) || ie.Step != "cwd" || (ie.Errno != unix.ENOTDIR && ie.Errno != unix.ENOENT) {
		t.Errorf("refused for another reason than the cwd (want step cwd, ENOTDIR or ENOENT): %v", err)
		return
	}
	t.Logf("refused: step %s, %s, %v", ie.Step, ie.Path, ie.Errno)
}
