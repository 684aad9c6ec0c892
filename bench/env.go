package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"bulwark.dev/bulwark/bench/internal/docker"
	"bulwark.dev/bulwark/bench/internal/procfs"
	"bulwark.dev/bulwark/internal/runroot"
	"bulwark.dev/bulwark/policy"
	"bulwark.dev/bulwark/sandbox"
)

// Env is what every probe reads: where the host's trees are, the state root, the floor's
// expected values and the running containers.
type Env struct {
	Proc, Sys, Etc string
	Root, RunRoot  string
	Targets        []string
	DaemonSocket   string
	Policy         PolicyConfig
	Executable     string
	Now            time.Time
	Euid           int
	Floor          sandbox.Expected
	Containers     []Container
	// LandlockABI is the kernel's Landlock ABI version (0: none); a function so tests set it.
	LandlockABI func() int
	// discoveryErrs are the container sources that could not be listed; the runtime section
	// reports them instead of passing over an empty list.
	discoveryErrs []error
	trustCache    *trustView
	policyCache   *policy.Policy
	policyErr     error
}

// Container is one running container, found through its runtime's records but checked through
// the kernel: Pid is verified against the start time the record names where it names one.
type Container struct {
	// Name is "<target>:<id>".
	Name string
	Pid  int
}

func newEnv(ctx context.Context, o Options) (*Env, error) {
	e := &Env{
		Proc: or(o.Proc, "/proc"), Sys: or(o.Sys, "/sys"), Etc: or(o.Etc, "/etc"), Root: o.Root, RunRoot: o.RunRoot,
		Targets: o.Targets, DaemonSocket: o.DaemonSocket, Policy: o.Policy, Executable: o.Executable,
		Now: time.Now(), Euid: os.Geteuid(), Floor: sandbox.FloorExpected(), LandlockABI: landlockABI,
	}
	if o.Now != nil {
		e.Now = o.Now()
	}
	if len(e.Targets) == 0 {
		e.Targets = []string{TargetBulwark}
	}
	for _, t := range e.Targets {
		var cs []Container
		var err error
		switch t {
		case TargetBulwark:
			if o.Root == "" {
				return nil, errors.New("bench: target bulwark needs the state root")
			}
			cs, err = e.bulwarkContainers()
		case TargetRunc:
			if o.RuncRoot == "" {
				return nil, errors.New("bench: target runc needs --runc-root")
			}
			cs, err = e.runcContainers(o.RuncRoot)
		case TargetDocker:
			cs, err = e.dockerContainers(ctx, or(o.DockerSocket, "/var/run/docker.sock"))
		default:
			return nil, fmt.Errorf("bench: unknown target %q (want bulwark, docker or runc)", t)
		}
		if err != nil {
			e.discoveryErrs = append(e.discoveryErrs, fmt.Errorf("%s: %w", t, err))
		}
		e.Containers = append(e.Containers, cs...)
	}
	return e, nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// alive keeps pid when it runs and, if start is not zero, is the process the record names.
func (e *Env) alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	got, err := procfs.StartTime(e.Proc, pid)
	return err == nil && (start == 0 || got == start)
}

// bulwarkContainers lists the sandboxes of the state root (containers/<id>/state.json in its run
// root: RunRoot, or internal/runroot's default) whose init still runs.
func (e *Env) bulwarkContainers() ([]Container, error) {
	run := e.RunRoot
	if run == "" {
		run = runroot.Of(e.Root)
	}
	dir := filepath.Join(run, "containers")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Container
	for _, ent := range ents {
		b, err := os.ReadFile(filepath.Join(dir, ent.Name(), "state.json"))
		if err != nil {
			continue // being created or removed
		}
		var st struct {
			ID            string `json:"id"`
			Pid           int    `json:"pid"`
			Status        string `json:"status"`
			InitStartTime uint64 `json:"initStartTime"`
		}
		if json.Unmarshal(b, &st) != nil {
			continue
		}
		// A started container's state still says "created": its exec fifo gone is what says it
		// runs (sandbox: state.go, refresh).
		_, ferr := os.Lstat(filepath.Join(dir, ent.Name(), "exec.fifo"))
		started := st.Status == "created" && errors.Is(ferr, os.ErrNotExist)
		if st.Status != "running" && st.Status != "paused" && !started {
			continue
		}
		if e.alive(st.Pid, st.InitStartTime) {
			out = append(out, Container{Name: TargetBulwark + ":" + st.ID, Pid: st.Pid})
		}
	}
	return out, nil
}

// runcContainers lists runc's containers under its --root (<root>/<id>/state.json).
func (e *Env) runcContainers(root string) ([]Container, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var out []Container
	for _, ent := range ents {
		b, err := os.ReadFile(filepath.Join(root, ent.Name(), "state.json"))
		if err != nil {
			continue
		}
		var st struct {
			ID    string `json:"id"`
			Pid   int    `json:"init_process_pid"`
			Start uint64 `json:"init_process_start"`
		}
		if json.Unmarshal(b, &st) != nil {
			continue
		}
		if e.alive(st.Pid, st.Start) {
			out = append(out, Container{Name: TargetRunc + ":" + st.ID, Pid: st.Pid})
		}
	}
	return out, nil
}

// dockerContainers asks the Docker socket for the running containers and their init pids.
func (e *Env) dockerContainers(ctx context.Context, socket string) ([]Container, error) {
	cs, err := docker.Running(ctx, socket)
	if err != nil {
		return nil, err
	}
	var out []Container
	for _, c := range cs {
		if e.alive(c.Pid, 0) {
			out = append(out, Container{Name: TargetDocker + ":" + strings.TrimPrefix(c.Name, "/"), Pid: c.Pid})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
