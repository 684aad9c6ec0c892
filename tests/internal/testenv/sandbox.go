package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/sandbox"
	"bulwark.dev/bulwark/tests/internal/report"
)

// waitTimeout bounds every wait on a container: the probe finishes in milliseconds.
const waitTimeout = 30 * time.Second

// deleteTimeout bounds Delete, so a runtime bug that hangs it fails one test, not the package.
const deleteTimeout = 30 * time.Second

// DeleteWithin is c.Delete(force) that gives up, with an error, after deleteTimeout.
func DeleteWithin(c *sandbox.Container, force bool) error {
	ch := make(chan error, 1)
	go func() { ch <- c.Delete(force) }()
	select {
	case err := <-ch:
		return err
	case <-time.After(deleteTimeout):
		return fmt.Errorf("delete %s did not return within %v", c.ID(), deleteTimeout)
	}
}

// Env is one runtime (state root + tenant) with its leak check.
type Env struct {
	t     *testing.T
	RT    *sandbox.Runtime
	Root  string
	Leaks *Leaks
	// Prepare, when set, is called with each new bundle's rootfs before Create (to plant files).
	Prepare func(rootfs string)
}

// NewEnv opens a Runtime for tenant on a fresh state root, skipping unless root; its leak check
// runs when the test ends.
func NewEnv(t *testing.T, tenant string) *Env {
	t.Helper()
	RequireRoot(t)
	root := t.TempDir()
	e := &Env{t: t, Root: root, Leaks: NewLeaks(t, root)}
	e.RT = e.Runtime(tenant)
	return e
}

// For returns e bound to a subtest: failures and cleanups go to t (FailNow must be called from
// the goroutine of the test that fails), the runtime and leak check stay shared.
func (e *Env) For(t *testing.T) *Env {
	c := *e
	c.t = t
	return &c
}

// Runtime opens another Runtime on the same state root, for another tenant.
func (e *Env) Runtime(tenant string) *sandbox.Runtime {
	e.t.Helper()
	rt, err := sandbox.New(sandbox.Options{Root: e.Root, Tenant: tenant})
	if err != nil {
		e.t.Fatalf("sandbox.New: %v", err)
	}
	return rt
}

// Ctr is a created container with the files its stdout and stderr go to.
type Ctr struct {
	*sandbox.Container
	t              *testing.T
	ID, Bundle     string
	Stdout, Stderr string // files the process's output goes to
}

// Create lays out a bundle for spec and creates the container on rt (e.RT when nil); the
// container is force-deleted when the test ends, before the leak check.
func (e *Env) Create(rt *sandbox.Runtime, spec *specs.Spec) (*Ctr, error) {
	e.t.Helper()
	if rt == nil {
		rt = e.RT
	}
	id := e.Leaks.Track(UniqueID(e.t))
	bundle := Bundle(e.t, spec)
	e.Leaks.Dir(bundle)
	if e.Prepare != nil {
		e.Prepare(filepath.Join(bundle, "rootfs"))
	}
	c := &Ctr{t: e.t, ID: id, Bundle: bundle}
	stdout, stderr := e.OutFile("stdout"), e.OutFile("stderr")
	defer stdout.Close()
	defer stderr.Close()
	c.Stdout, c.Stderr = stdout.Name(), stderr.Name()
	sc, err := rt.Create(id, bundle, spec, sandbox.IO{Stdout: stdout, Stderr: stderr})
	if err != nil {
		return nil, err
	}
	c.Container = sc
	e.t.Cleanup(func() {
		if err := DeleteWithin(sc, true); err != nil {
			e.t.Errorf("delete %s: %v", id, err)
		}
	})
	return c, nil
}

// MustCreate is Create failing the test on error.
func (e *Env) MustCreate(rt *sandbox.Runtime, spec *specs.Spec) *Ctr {
	e.t.Helper()
	c, err := e.Create(rt, spec)
	if err != nil {
		e.t.Fatalf("create: %v", err)
	}
	return c
}

// OutFile creates a file for a process's output in a temp dir of the test.
func (e *Env) OutFile(name string) *os.File {
	e.t.Helper()
	f, err := os.CreateTemp(e.t.TempDir(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	return f
}

// Run creates, starts and waits for a container running the probe with args, and returns its
// report and the container (not yet deleted, so its State can still be read).
func (e *Env) Run(spec *specs.Spec) (*report.Report, *Ctr) {
	e.t.Helper()
	c := e.MustCreate(nil, spec)
	if err := c.Start(); err != nil {
		e.t.Fatalf("start: %v%s", err, c.ErrText())
	}
	if code := c.WaitExit(); code != 0 {
		e.t.Fatalf("probe exited %d%s", code, c.ErrText())
	}
	return c.Report(), c
}

// WaitExit waits for init with a timeout, killing the container if it does not exit.
func (c *Ctr) WaitExit() int {
	c.t.Helper()
	type res struct {
		code int
		err  error
	}
	ch := make(chan res, 1)
	go func() { code, err := c.Wait(); ch <- res{code, err} }()
	select {
	case r := <-ch:
		if r.err != nil {
			c.t.Fatalf("wait: %v%s", r.err, c.ErrText())
		}
		return r.code
	case <-time.After(waitTimeout):
		c.Signal(syscall.SIGKILL, true)
		c.t.Fatalf("container did not exit within %v%s", waitTimeout, c.ErrText())
		return -1
	}
}

func (c *Ctr) Report() *report.Report {
	c.t.Helper()
	b, err := os.ReadFile(c.Stdout)
	if err != nil {
		c.t.Fatal(err)
	}
	return ParseReport(c.t, b)
}

func (c *Ctr) ErrText() string {
	b, _ := os.ReadFile(c.Stderr)
	if len(b) == 0 {
		return ""
	}
	return "\nstderr:\n" + string(b)
}

func (c *Ctr) MustState() sandbox.State {
	c.t.Helper()
	st, err := c.State()
	if err != nil {
		c.t.Fatalf("state: %v", err)
	}
	return st
}

// ProbeArgs returns the args that run the probe inside the sandbox.
func ProbeArgs(args ...string) []string { return append([]string{"/bin/probe"}, args...) }

// HostNS returns the test process's namespace links (the host's).
func HostNS(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	ents, err := os.ReadDir("/proc/self/ns")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join("/proc/self/ns", e.Name()))
		if err == nil {
			m[e.Name()] = l
		}
	}
	return m
}

// HostCgroupPath returns the path of pid's cgroup in the v1 hierarchy that has controller.
func HostCgroupPath(pid int, controller string) (string, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		for _, c := range strings.Split(f[1], ",") {
			if c == controller {
				return filepath.Join("/sys/fs/cgroup", controller, f[2]), nil
			}
		}
	}
	return "", errors.New("no " + controller + " cgroup for pid " + strconv.Itoa(pid))
}

// FloorRefusal is the floor's verdict on spec as an error: the error of a spec that cannot be
// floored, or the refusal (FloorResult.Err) of one that asks for what the floor never grants.
func FloorRefusal(rt *sandbox.Runtime, spec *specs.Spec) error {
	res, err := rt.Floor(spec)
	if err != nil {
		return err
	}
	return res.Err()
}
