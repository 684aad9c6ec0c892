package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"bulwark.dev/bulwark/sandbox/internal/cgroups"
)

// Runtime creates and manages containers under one state root.
type Runtime struct {
	opts Options
}

// Container is a handle on one container's persisted state.
type Container struct {
	rt  *Runtime
	id  string
	dir string

	// initPid is init's pid, set only in the process that created the container (init is its
	// child: the setup child forked it as a sibling); it lets Wait reap init and return its real
	// exit status.
	initPid int
	// initStart is init's start time as Create recorded it (stateFile.InitStartTime), with initPid.
	initStart uint64
	// cg is the cgroup Create made for the container (named cgName), kept in the process that
	// created it so that its Delete does not read the host's cgroup mounts again (see kill);
	// nil elsewhere.
	cg     cgroups.Manager
	cgName string
	// started is when Start returned in this process (for the "workload" step), or zero.
	started  time.Time
	waitOnce sync.Once
	exitCode int
	waitErr  error
	// reaped is set once this process has collected init's exit status: init is gone for sure.
	reaped atomic.Bool
}

// Stats are a container's resource usage, read from its cgroup.
type Stats struct {
	MemoryUsage uint64 `json:"memoryUsage"`
	MemoryPeak  uint64 `json:"memoryPeak"`
	MemoryLimit uint64 `json:"memoryLimit"`
	OOMKills    uint64 `json:"oomKills"`
	PidsCurrent uint64 `json:"pidsCurrent"`
	PidsLimit   uint64 `json:"pidsLimit"`
	CPUUsageNs  uint64 `json:"cpuUsageNs"`
}

// New opens (creating if needed) the state root.
func New(opts Options) (*Runtime, error) {
	if opts.Root == "" {
		return nil, errors.New("sandbox: Options.Root is required")
	}
	if opts.Tenant == "" {
		opts.Tenant = DefaultTenant
	}
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("state root: %w", err)
	}
	opts.Root = root
	if opts.IDMapDir == "" {
		opts.IDMapDir = filepath.Join(root, "idmap")
	}
	if opts.IDMapDir, err = filepath.Abs(opts.IDMapDir); err != nil {
		return nil, fmt.Errorf("id map dir: %w", err)
	}
	if opts.SELinuxDir == "" {
		opts.SELinuxDir = filepath.Join(root, "selinux")
	}
	if opts.SELinuxDir, err = filepath.Abs(opts.SELinuxDir); err != nil {
		return nil, fmt.Errorf("selinux label dir: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(root, "containers"), 0o700); err != nil {
		return nil, fmt.Errorf("create state root: %w", err)
	}
	return &Runtime{opts: opts}, nil
}

// Load returns a handle on an existing container of the Runtime's tenant (also one whose creation
// crashed half-way, before its state named an owner, so that Delete can clean it up). Another
// tenant's container is answered exactly as a missing one (see owned).
func (r *Runtime) Load(id string) (*Container, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	dir := r.containerDir(id)
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNotExist, id)
		}
		return nil, fmt.Errorf("load %s: %w", id, err)
	}
	c := &Container{rt: r, id: id, dir: dir}
	if _, err := c.load(); errors.Is(err, ErrNotExist) {
		return nil, err
	}
	return c, nil
}

// List returns the states of the Runtime's tenant's containers, sorted by id.
func (r *Runtime) List() ([]State, error) {
	ents, err := os.ReadDir(filepath.Join(r.opts.Root, "containers"))
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var out []State
	for _, e := range ents {
		if checkID(e.Name()) != nil {
			continue
		}
		// Another tenant's containers are left out silently: listing is not an access to them.
		st, err := loadState(r.containerDir(e.Name()), e.Name(), r.opts.Tenant)
		if err != nil || st.owner() != r.opts.Tenant {
			continue
		}
		out = append(out, st.State)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// ID returns the container id.
func (c *Container) ID() string { return c.id }

func (c *Container) load() (*stateFile, error) {
	st, err := loadState(c.dir, c.id, c.rt.opts.Tenant)
	if err == nil {
		err = c.owned(st)
	}
	if err != nil {
		if errors.Is(err, ErrNotExist) || errors.Is(err, errForeign) {
			return nil, fmt.Errorf("%w: %s", ErrNotExist, c.id)
		}
		return nil, err
	}
	return st, nil
}

// errForeign is owned's answer for a container another tenant owns; callers turn it into the
// ErrNotExist error a missing container gets.
var errForeign = errors.New("container of another tenant")

// owned checks the container's state, just read, against the Runtime's tenant: the one place
// ownership is decided. Load checks it first; every operation checks it again when it reads the
// state (under the container's lock where the operation takes it), so an id deleted and
// re-created by another tenant in between is not acted on. A container another tenant owns is
// errForeign, which callers answer exactly as a missing container (same error, same text): a
// tenant learns nothing of another's containers, not even that one exists. The refusal is
// reported as an EventAccessRefused event for the caller to audit. A directory whose creator has
// not written its state yet (or never will: killed half-way) names no owner and holds nothing:
// loadState reads it as the caller's, so that its leftovers can be listed and deleted.
func (c *Container) owned(st *stateFile) error {
	if owner := st.owner(); owner != c.rt.opts.Tenant {
		c.rt.event(c.id, EventAccessRefused, map[string]string{"tenant": c.rt.opts.Tenant, "owner": owner})
		return errForeign
	}
	return nil
}

// Init returns init's pid and start time (field 22 of /proc/<pid>/stat) as Create recorded them,
// without reading the state again: its caller learns whom it created for the cost of nothing.
// Only the process that created the container knows them so; elsewhere it is ErrNoExitStatus's
// case, and State answers.
func (c *Container) Init() (pid int, start uint64, err error) {
	if c.initPid == 0 {
		return 0, 0, fmt.Errorf("init of %s: %w", c.id, ErrNoExitStatus)
	}
	return c.initPid, c.initStart, nil
}

// State returns the current state.
func (c *Container) State() (State, error) {
	st, err := c.load()
	if err != nil {
		return State{}, err
	}
	return st.State, nil
}

// Stats reports resource usage.
func (c *Container) Stats() (*Stats, error) {
	st, err := c.load()
	if err != nil {
		return nil, err
	}
	cg, err := st.cgroup()
	if err != nil {
		return nil, err
	}
	s, err := cg.Stats()
	if err != nil {
		return nil, fmt.Errorf("cgroup stats: %w", err)
	}
	return &Stats{
		MemoryUsage: s.MemoryUsage, MemoryPeak: s.MemoryPeak, MemoryLimit: s.MemoryLimit,
		OOMKills: s.OOMKills, PidsCurrent: s.PidsCurrent, PidsLimit: s.PidsLimit, CPUUsageNs: s.CPUUsageNS,
	}, nil
}

// ExitCounters reports the container's peak memory and how many of its processes the OOM killer
// killed: what the record of its exit carries, without the other counters Stats reads. In the
// process that created the container it reads them from the cgroup Create made, without reading
// the state: it is called as init's exit is reaped, on the way to the caller's Wait (a foreground
// run's record of the exit), and the state's only use here was to name the cgroup, which cannot be
// another while the container lasts (a container deleted meanwhile has no cgroup left to read,
// whatever its state said).
func (c *Container) ExitCounters() (peak, oomKills uint64, err error) {
	cg := c.cg
	if cg == nil {
		st, err := c.load()
		if err != nil {
			return 0, 0, err
		}
		if cg, err = c.cgroupOf(st.Cgroup); err != nil {
			return 0, 0, err
		}
	}
	if peak, oomKills, err = cg.ExitCounters(); err != nil {
		return 0, 0, fmt.Errorf("cgroup counters: %w", err)
	}
	return peak, oomKills, nil
}

// Processes lists the host pids of the container's processes.
func (c *Container) Processes() ([]int, error) {
	st, err := c.load()
	if err != nil {
		return nil, err
	}
	cg, err := st.cgroup()
	if err != nil {
		return nil, err
	}
	return cg.Pids()
}
