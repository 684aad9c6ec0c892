package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/specjson"
	"bulwark.dev/bulwark/sandbox/internal/nsenter"
	"bulwark.dev/bulwark/sandbox/setup"
)

// Process is a process started in a running container with Exec. It is a child of the calling
// process (see internal/nsenter), which must Wait for it.
type Process struct {
	// Pid is the host pid of the process.
	Pid int

	waitOnce sync.Once
	code     int
	err      error
}

// Wait waits for an exec'd process and returns its exit status (128+n for death by signal n).
func (p *Process) Wait() (int, error) {
	p.waitOnce.Do(func() { p.code, p.err = reap(p.Pid) })
	return p.code, p.err
}

// reap waits for the child pid and returns a shell-style status.
func reap(pid int) (int, error) {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err == unix.ECHILD {
			return -1, fmt.Errorf("wait for exec'd process %d: already reaped (container deleted?): %w", pid, err)
		}
		if err != nil {
			return -1, fmt.Errorf("wait for exec'd process %d: %w", pid, err)
		}
		break
	}
	if ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return ws.ExitStatus(), nil
}

// writeSpec keeps the effective spec as json.Marshal writes it (specjson: without its reflection,
// whose first use in a process costs 1-4 ms).
func writeSpec(dir string, s *specs.Spec) error {
	b, err := specjson.Encode(s)
	if err != nil {
		return fmt.Errorf("encode effective spec: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "spec.json"), b, 0o600); err != nil {
		return fmt.Errorf("write effective spec: %w", err)
	}
	return nil
}

func readSpec(dir string) (*specs.Spec, error) {
	b, err := os.ReadFile(filepath.Join(dir, "spec.json"))
	if err != nil {
		return nil, fmt.Errorf("read effective spec: %w", err)
	}
	s, err := specjson.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("parse effective spec: %w", err)
	}
	return s, nil
}

// Exec starts p inside the container with exactly the container's confinement: every one of its
// namespaces (joined by internal/nsenter before the Go runtime starts), its cgroup, and the same
// floor for capabilities, no_new_privs, Landlock and seccomp as init got.
func (c *Container) Exec(p *specs.Process, stdio IO) (*Process, error) {
	clk := setup.NewStepClock()
	st, err := c.load()
	if err != nil {
		return nil, err
	}
	if s := Status(st.Status); s != StatusRunning && s != StatusCreated {
		return nil, fmt.Errorf("%w: exec needs a created or running container, %s is %s", ErrInvalidState, c.id, s)
	}
	if p == nil {
		return nil, floorErr("exec without a process")
	}
	spec, err := readSpec(c.dir)
	if err != nil {
		return nil, err
	}
	spec.Process = p
	// nsenter enters the container's own namespaces, whether Create joined them or not: the
	// paths a pod container's effective spec names are not joined anew.
	for i := range spec.Linux.Namespaces {
		spec.Linux.Namespaces[i].Path = ""
	}
	res, err := c.rt.Floor(spec)
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		return nil, err
	}
	eff := res.Spec
	if err := checkUser(eff.Process, st.Size); err != nil {
		return nil, err
	}
	clk.Lap("floor")
	sc, err := c.rt.compileSeccomp(eff.Linux.Seccomp)
	if err != nil {
		return nil, err
	}
	clk.Lap("seccomp")
	proc, err := processPlanFor(eff.Process, eff.Mounts, sc, !eff.Root.Readonly)
	if err != nil {
		return nil, err
	}
	if proc.Terminal && stdio.ConsoleSocket == "" {
		return nil, fmt.Errorf("process.terminal is set but no console socket was given")
	}
	proc.MAC = st.MAC
	cg, err := st.cgroup()
	if err != nil {
		return nil, err
	}
	syncR, syncW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("nsenter pipe: %w", err)
	}
	defer syncR.Close()
	clk.Lap("plan")
	spawned := clk.Last
	// The nsenter process is born in the container's cgroups (see startInCgroup) and its fork,
	// the exec'd process, inherits them: nothing is migrated afterwards. A cgroup.procs write in
	// the unified hierarchy would wait ~10-15 ms for an RCU grace period.
	ch, cmd, err := c.rt.startChild("exec", stdio, proc.Terminal, &syscall.SysProcAttr{}, cg, nil,
		[]string{nsenter.Env + "=" + strconv.Itoa(st.Pid)}, syncW)
	syncW.Close()
	if err != nil {
		return nil, err
	}
	defer ch.Close()
	// The pid was checked alive with its start time just above; the namespaces it is about to
	// lend are checked again by nsenter opening them. nsenter exits right after its report; the
	// process that goes on is our child too (CLONE_PARENT), reaped by Process.Wait.
	pid, err := nsenter.ReadReport(syncR)
	cmd.Wait()
	if err != nil {
		return nil, fmt.Errorf("exec in %s: %w", c.id, err)
	}
	fail := func(err error) (*Process, error) {
		unix.Kill(pid, unix.SIGKILL)
		reap(pid)
		return nil, err
	}
	if err := setOOMScoreAdj(pid, &proc); err != nil {
		return fail(fmt.Errorf("exec in %s: %w", c.id, err))
	}
	clk.Lap("spawn")
	cfg := &setup.Config{ID: c.id, Process: proc, RootfsFD: -1, FifoFD: -1, MaskDirFD: -1, CgroupSkelFD: -1}
	if err := ch.Send(&setup.Message{Kind: setup.KindConfig, Config: cfg}); err != nil {
		return fail(err)
	}
	clk.Lap("config")
	ready, err := awaitReady(ch, stdio.ConsoleSocket)
	if err != nil {
		return fail(err)
	}
	clk.Lap("await-ready")
	c.rt.steps(c.id, clk.Steps, childSteps(ready, spawned))
	c.rt.event(c.id, "exec", map[string]string{"pid": strconv.Itoa(pid)})
	return &Process{Pid: pid}, nil
}
