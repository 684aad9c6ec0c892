package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/errdefs"
	"bulwark.dev/bulwark/internal/atomicfile"
	"bulwark.dev/bulwark/internal/flock"
	"bulwark.dev/bulwark/internal/jsontext"
	"bulwark.dev/bulwark/internal/plainfile"
	"bulwark.dev/bulwark/internal/procstat"
	"bulwark.dev/bulwark/sandbox/internal/mac"
)

// stateFile is state.json: the public State plus what the runtime needs to find the container's
// resources again after a crash.
type stateFile struct {
	State
	// InitStartTime is field 22 of /proc/<pid>/stat, so a recycled pid is never mistaken for init.
	InitStartTime uint64 `json:"initStartTime,omitempty"`
	// Cgroup is the cgroup name given to cgroups.New.
	Cgroup string `json:"cgroup"`
	// MAC is what the SELinux/AppArmor layers hold for the container; Exec applies the same.
	MAC mac.Container `json:"mac"`
}

// transitions is the lifecycle state machine: for each state, the states it may move to.
var transitions = map[Status][]Status{
	StatusCreating: {StatusCreated, StatusStopped},
	StatusCreated:  {StatusRunning, StatusStopped},
	StatusRunning:  {StatusPaused, StatusStopped},
	StatusPaused:   {StatusRunning, StatusStopped},
	StatusStopped:  {},
}

// transition checks that from → to is legal.
func transition(from, to Status) error {
	for _, s := range transitions[from] {
		if s == to {
			return nil
		}
	}
	return fmt.Errorf("%w: %s → %s", ErrInvalidState, from, to)
}

// validID reports whether id is [A-Za-z0-9][A-Za-z0-9_.-]*, checked by hand: a regexp compiled
// at every process start (and every container's setup child's) cost 0.03-0.05 ms.
func validID(id string) bool {
	for i := 0; i < len(id); i++ {
		c := id[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '.' && c != '-') {
			return false
		}
	}
	return id != ""
}

func checkID(id string) error { return ValidateID(id) }

// ValidateID refuses a container id the runtime cannot use: an id names a directory under the
// state root, a cgroup and a hostname. Callers check it before deciding anything about it.
func ValidateID(id string) error {
	if len(id) > 128 || !validID(id) {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid container id %q: want [A-Za-z0-9][A-Za-z0-9_.-]{0,127}", id)
	}
	return nil
}

func (r *Runtime) containerDir(id string) string {
	return filepath.Join(r.opts.Root, "containers", id)
}

func readState(dir string) (*stateFile, error) {
	// Outside the runtime's poller (plainfile): read by start, delete and every state query.
	b, err := plainfile.ReadFile(filepath.Join(dir, stateName))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, ErrNotExist
		}
		return nil, fmt.Errorf("read state: %w", err)
	}
	st := &stateFile{}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("parse state %s: %w", dir, err)
	}
	return st, nil
}

// warmStateDecoder decodes a state once, so that encoding/json's decoder for the state's types is
// built before the first readState of the process needs it (Start's, Delete's: 0.2 ms in a fresh
// process). Create calls it while it waits for the setup child.
func warmStateDecoder(b []byte) {
	var st stateFile
	json.Unmarshal(b, &st)
}

// writeState replaces state.json atomically (write to a temp file, rename), so a reader or a crash
// sees the old or the new state, never a torn one. No fsync: it cost ~4 ms per write, and a state
// lost to a power cut is harmless — Delete cleans up from the container id alone.
func writeState(dir string, st *stateFile) error {
	b, err := st.appendJSON(make([]byte, 0, 512))
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(dir, stateName), b, atomicfile.Options{}); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}

// appendJSON appends st as encoding/json writes it (the same fields, order and omissions; checked
// by TestStateJSONIsEncodingJSON). Written by hand: encoding/json's first Marshal of the type in a
// process builds its encoder by reflection, 0.17-0.5 ms on the path to a container's start.
func (st *stateFile) appendJSON(b []byte) ([]byte, error) {
	w := &jsontext.Writer{B: b}
	n := w.Object()
	w.Key(n, "ociVersion")
	w.String(st.Version)
	w.Key(n, "id")
	w.String(st.ID)
	w.Key(n, "status")
	w.String(string(st.Status))
	if st.Pid != 0 {
		w.Key(n, "pid")
		w.Int(int64(st.Pid))
	}
	w.Key(n, "bundle")
	w.String(st.Bundle)
	if len(st.Annotations) > 0 {
		w.Key(n, "annotations")
		w.StringMap(st.Annotations)
	}
	w.Key(n, "tenant")
	w.String(st.Tenant)
	w.Key(n, "created")
	w.Time(st.Created)
	if len(st.Raises) > 0 {
		w.Key(n, "raises")
		a := w.Array()
		for _, r := range st.Raises {
			w.Elem(a)
			m := w.Object()
			w.Key(m, "field")
			w.String(r.Field)
			w.Key(m, "from")
			w.String(r.From)
			w.Key(m, "to")
			w.String(r.To)
			w.EndObject()
		}
		w.EndArray()
	}
	w.Key(n, "uidBase")
	w.Uint(uint64(st.UIDBase))
	w.Key(n, "gidBase")
	w.Uint(uint64(st.GIDBase))
	w.Key(n, "idRangeSize")
	w.Uint(uint64(st.Size))
	if st.Pod != "" {
		w.Key(n, "pod")
		w.String(st.Pod)
	}
	if st.InitStartTime != 0 {
		w.Key(n, "initStartTime")
		w.Uint(st.InitStartTime)
	}
	w.Key(n, "cgroup")
	w.String(st.Cgroup)
	w.Key(n, "mac")
	m := w.Object()
	w.Key(m, "layers")
	l := w.Object()
	w.Key(l, "selinux")
	w.Bool(st.MAC.Layers.SELinux)
	w.Key(l, "apparmor")
	w.Bool(st.MAC.Layers.AppArmor)
	w.Key(l, "landlockABI")
	w.Int(int64(st.MAC.Layers.LandlockABI))
	w.EndObject()
	w.Key(m, "selinux")
	se := w.Object()
	w.Key(se, "process")
	w.String(st.MAC.SELinux.Process)
	w.Key(se, "mount")
	w.String(st.MAC.SELinux.Mount)
	w.EndObject()
	if st.MAC.AppArmor != "" {
		w.Key(m, "apparmor")
		w.String(st.MAC.AppArmor)
	}
	w.EndObject()
	w.EndObject()
	return w.Bytes()
}

// cgroupName is the cgroup a container is given (relative to each hierarchy's mount): its spec's
// cgroupsPath, else bulwark/<id>.
func cgroupName(id string, spec *specs.Spec) string {
	if spec != nil && spec.Linux != nil && spec.Linux.CgroupsPath != "" {
		return strings.TrimPrefix(spec.Linux.CgroupsPath, "/")
	}
	return "bulwark/" + id
}

func newStateFile(id, bundle, tenant string, spec *specs.Spec) *stateFile {
	st := &stateFile{Cgroup: cgroupName(id, spec)}
	st.Version = specs.Version
	st.ID = id
	st.Bundle = bundle
	st.Status = specs.ContainerState(StatusCreating)
	st.Tenant = tenant
	if spec != nil {
		st.Annotations = spec.Annotations
	}
	return st
}

// owner is the tenant that owns the container: the one its state names (DefaultTenant if none).
func (st *stateFile) owner() string {
	if st.Tenant == "" {
		return DefaultTenant
	}
	return st.Tenant
}

// initAlive reports whether the recorded init process still exists (and is not a zombie).
func (st *stateFile) initAlive() bool {
	if st.Pid <= 0 || st.InitStartTime == 0 {
		return false
	}
	if procstat.StartTime(st.Pid) != st.InitStartTime {
		return false
	}
	return procstat.State(st.Pid) != "Z"
}

// execFifo is the container directory's exec fifo: made by Create, init blocks on it until Start
// writes it and then removes it.
const execFifo = "exec.fifo"

// stateName is the container's state file in its directory.
const stateName = "state.json"

// refresh derives the live status from the stored one and the kernel's view: as runc says, a
// container whose init is gone is stopped; and as runc tells them apart, a created container
// whose exec fifo is gone has been started — Start writes no state (on a disk, replacing
// state.json cost ~0.5 ms, several under I/O load). A "creating" container is one whose creator holds the
// directory lock (Create keeps it until it returns); with the lock free, the creator died (kill -9
// half-way) and nothing will ever finish it: stopped too, so that it is listed as such and a plain
// delete removes it.
func (st *stateFile) refresh(dir string) {
	switch Status(st.Status) {
	case StatusCreated, StatusRunning, StatusPaused:
		if !st.initAlive() {
			st.Status = specs.ContainerState(StatusStopped)
		} else if Status(st.Status) == StatusCreated && !fifoPresent(dir) {
			st.Status = specs.ContainerState(StatusRunning)
		}
	case StatusCreating:
		if !lockHeld(dir) {
			st.Status = specs.ContainerState(StatusStopped)
		}
	}
}

// fifoPresent reports whether dir still holds its exec fifo (when it cannot tell: yes, so a
// container is never reported started that may not be).
func fifoPresent(dir string) bool {
	_, err := os.Lstat(filepath.Join(dir, execFifo))
	return !errors.Is(err, os.ErrNotExist)
}

// loadState reads a container's state.json. A directory without one is a creation that has not
// written it yet — or never will, its creator killed between the mkdir and the first write: it
// is reported as a creating container (stopped by refresh once no creator holds the lock), never
// hidden, so that list shows it and delete finds it.
func loadState(dir, id, tenant string) (*stateFile, error) {
	st, err := readState(dir)
	if errors.Is(err, ErrNotExist) {
		fi, serr := os.Stat(dir)
		if serr != nil {
			return nil, err
		}
		st = newStateFile(id, "", tenant, nil)
		st.Created = fi.ModTime().UTC()
	} else if err != nil {
		return nil, err
	}
	st.refresh(dir)
	return st, nil
}

// lockHeld reports whether some process holds the container directory's lock (lockDir). A
// process that holds it itself (Delete) sees it held too: flock locks belong to the open file.
func lockHeld(dir string) bool {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	return errors.Is(flock.Lock(fd, unix.LOCK_SH|unix.LOCK_NB), unix.EWOULDBLOCK)
}

// signalInit sends sig to the recorded init process through a pidfd, so a recycled pid is never
// signalled.
func (st *stateFile) signalInit(sig unix.Signal) error {
	if !st.initAlive() {
		return fmt.Errorf("%w: init process is not running", ErrInvalidState)
	}
	pfd, err := unix.PidfdOpen(st.Pid, 0)
	if err != nil {
		return fmt.Errorf("pidfd_open %d: %w", st.Pid, err)
	}
	defer unix.Close(pfd)
	if procstat.StartTime(st.Pid) != st.InitStartTime {
		return fmt.Errorf("%w: init process is gone", ErrInvalidState)
	}
	if err := unix.PidfdSendSignal(pfd, sig, nil, 0); err != nil {
		return fmt.Errorf("signal init %d: %w", st.Pid, err)
	}
	return nil
}

// lockDir takes an exclusive flock on the container directory, serialising state changes between
// runtime processes (a CLI "start" racing a "delete"). The lock goes with the descriptor.
func lockDir(dir string) (unlock func(), err error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return func() {}, nil // nothing left to protect; callers see ErrNotExist next
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	if err := flock.Lock(fd, unix.LOCK_EX); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return func() { unix.Close(fd) }, nil
}
