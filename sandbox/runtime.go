package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Runtime creates and manages containers under one state root.
type Runtime struct {
	opts Options
}

// Container is a handle on one container's persisted state.
type Container struct {
	rt *Runtime
	id string
}

// Process is a process started in a running container with Exec.
type Process struct {
	Pid int
}

// Stats are a container's resource usage, read from its cgroup.
type Stats struct {
	MemoryUsage uint64 `json:"memoryUsage"`
	MemoryPeak  uint64 `json:"memoryPeak"`
	MemoryLimit uint64 `json:"memoryLimit"`
	PidsCurrent uint64 `json:"pidsCurrent"`
	CPUUsageNs  uint64 `json:"cpuUsageNs"`
	OOMKills    uint64 `json:"oomKills"`
}

var errNotImplemented = errors.New("not implemented yet")

// New opens (creating if needed) the state root.
func New(opts Options) (*Runtime, error) {
	if opts.Root == "" {
		return nil, errors.New("sandbox: Options.Root is required")
	}
	if err := os.MkdirAll(filepath.Join(opts.Root, "containers"), 0o700); err != nil {
		return nil, fmt.Errorf("create state root: %w", err)
	}
	return &Runtime{opts: opts}, nil
}

// Floor returns the effective spec after the floor and the raises it made.
func (r *Runtime) Floor(spec *specs.Spec) (*specs.Spec, []Raise, error) {
	return nil, nil, errNotImplemented
}

// Create sets up a container whose init waits for Start.
func (r *Runtime) Create(id, bundle string, spec *specs.Spec, stdio IO) (*Container, error) {
	return nil, errNotImplemented
}

// Load returns a handle on an existing container.
func (r *Runtime) Load(id string) (*Container, error) { return nil, ErrNotExist }

// List returns the states of all containers.
func (r *Runtime) List() ([]State, error) { return nil, nil }

// ID returns the container id.
func (c *Container) ID() string { return c.id }

// State returns the current state.
func (c *Container) State() (State, error) { return State{}, errNotImplemented }

// Start runs the user process of a created container.
func (c *Container) Start() error { return errNotImplemented }

// Wait waits for the init process and returns its exit status.
func (c *Container) Wait() (int, error) { return -1, errNotImplemented }

// Signal sends sig to init, or to every process of the container when all is set.
func (c *Container) Signal(sig syscall.Signal, all bool) error { return errNotImplemented }

// Delete removes the container; idempotent.
func (c *Container) Delete(force bool) error { return errNotImplemented }

// Exec starts an additional process with the container's confinement.
func (c *Container) Exec(p *specs.Process, stdio IO) (*Process, error) {
	return nil, errNotImplemented
}

// Wait waits for an exec'd process and returns its exit status.
func (p *Process) Wait() (int, error) { return -1, errNotImplemented }

// Pause freezes every process of the container.
func (c *Container) Pause() error { return errNotImplemented }

// Resume thaws a paused container.
func (c *Container) Resume() error { return errNotImplemented }

// Processes lists the host pids of the container's processes.
func (c *Container) Processes() ([]int, error) { return nil, errNotImplemented }

// Stats reports resource usage.
func (c *Container) Stats() (*Stats, error) { return nil, errNotImplemented }

// Init runs the container-side init when the binary was re-executed as "init"; otherwise it returns.
func Init() {}
