package cgroups

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// helperEnv selects a helper mode when the test binary re-executes itself as a child process
// that must be inside the cgroup before it does the interesting thing.
const helperEnv = "BULWARK_CGROUPS_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "open":
		waitGo()
		for _, p := range os.Args[1:] {
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				var errno syscall.Errno
				errors.As(err, &errno)
				fmt.Printf("%s %d\n", p, int(errno))
				continue
			}
			f.Close()
			fmt.Printf("%s ok\n", p)
		}
	case "alloc":
		waitGo()
		var keep [][]byte
		for i := 0; i < 64; i++ { // up to 1 GiB, far above any test limit
			b := make([]byte, 16<<20)
			for j := range b {
				if j%4096 == 0 {
					b[j] = 1
				}
			}
			keep = append(keep, b)
		}
		fmt.Println("survived", len(keep))
	}
	os.Exit(0)
}

// waitGo blocks until the parent has placed this process in the cgroup and says "go".
func waitGo() {
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		os.Exit(3)
	}
}

// helper is a re-executed child parked until go() is called.
type helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   strings.Builder
}

func startHelper(t *testing.T, mode string, args ...string) *helper {
	t.Helper()
	h := &helper{cmd: exec.Command(os.Args[0], args...)}
	h.cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	h.cmd.Stdout = &h.out
	h.cmd.Stderr = os.Stderr
	var err error
	if h.stdin, err = h.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.cmd.Process.Kill()
		h.cmd.Wait()
	})
	return h
}

// run lets the helper proceed and waits for it.
func (h *helper) run() (string, error) {
	if _, err := io.WriteString(h.stdin, "go\n"); err != nil {
		return "", err
	}
	err := h.cmd.Wait()
	return h.out.String(), err
}

func randomName(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "bulwark-test-" + hex.EncodeToString(b)
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups")
	}
}

// addProc moves pid into every hierarchy of m: the tests' stand-in for a process the runtime
// starts there (see sandbox.startInCgroup).
func addProc(t *testing.T, m Manager, pid int) {
	t.Helper()
	for _, h := range m.Hierarchies() {
		if err := os.WriteFile(filepath.Join(h.Dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			t.Fatalf("add pid %d: %v", pid, err)
		}
	}
}

// create is m.Create and the wait for its limits, the cgroup destroyed when they fail: what the
// runtime does (its undo destroys a cgroup whose limits failed).
func create(m Manager, res *specs.LinuxResources) error {
	limits, err := m.Create(res)
	if err != nil {
		return err
	}
	if err := limits(); err != nil {
		return errors.Join(err, m.Destroy())
	}
	return nil
}
