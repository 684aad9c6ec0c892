// Package sandbox is Bulwark's low-level runtime: it turns an OCI runtime-spec bundle into a running,
// fully confined process. Every container gets the floor (user namespace, new namespaces, read-only
// pivot_root'ed rootfs, masked paths, no capabilities unless granted, no_new_privs, seccomp allowlist,
// a MAC layer, cgroup limits); a spec asking for less is raised and each raise is recorded.
// The package knows nothing of policy, image trust or audit sinks: callers supply those through
// small interfaces.
package sandbox

import (
	"os"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/errdefs"
)

// Raise records one place where the floor changed what the spec asked for.
type Raise struct {
	Field string `json:"field"`
	From  string `json:"from"`
	To    string `json:"to"`
}

// Status is a container's lifecycle state, as in the OCI runtime spec plus "paused".
type Status string

// The legal lifecycle states.
const (
	StatusCreating Status = "creating"
	StatusCreated  Status = "created"
	StatusRunning  Status = "running"
	StatusPaused   Status = "paused"
	StatusStopped  Status = "stopped"
)

// State is what the runtime persists for a container (state.json) and reports to callers.
type State struct {
	specs.State
	Tenant  string    `json:"tenant"`
	Created time.Time `json:"created"`
	Raises  []Raise   `json:"raises,omitempty"`
	// UIDBase/GIDBase are the host ids container id 0 maps to.
	UIDBase uint32 `json:"uidBase"`
	GIDBase uint32 `json:"gidBase"`
	Size    uint32 `json:"idRangeSize"`
	// Pod is the Kubernetes pod (its sandbox container's id) the floor proved the container
	// belongs to at create (FloorResult.Pod); an exec is decided in it.
	Pod string `json:"pod,omitempty"`
}

// Options configure a Runtime.
type Options struct {
	// Root is the state root (containers/ live below it, and idmap/ unless IDMapDir is set).
	Root string
	// IDMapDir is the id-range allocator's directory; default <Root>/idmap. Ranges are disjoint
	// only among Runtimes sharing it, so every Runtime on a host must name the same one (a caller
	// that opens one Root per namespace, as containerd does with bulwark-runc --root, sets it).
	IDMapDir string
	// SELinuxDir is the SELinux MCS label store's directory; default <Root>/selinux. Like the id
	// ranges, labels are unique only among Runtimes sharing it: one per host.
	SELinuxDir string
	// SeccompCacheDir holds the compiled seccomp programs, by profile digest; default
	// <Root>/seccomp-cache. A caller whose Root is emptied whenever no container is left
	// (bulwark's run root) keeps it elsewhere, or every start compiles again.
	SeccompCacheDir string
	// Tenant is the tenant the caller acts for (empty: DefaultTenant). It owns the containers
	// this Runtime creates and selects their id range, and it is the only tenant whose
	// containers this Runtime finds: another tenant's are answered as missing (see Load).
	Tenant string
	// AllowNoMAC is the operator's explicit, audited exception for hosts with no MAC layer at all.
	AllowNoMAC bool
	// WritableRoot is the caller's grant of a writable root filesystem (policy's, for the
	// engine): a spec asking for one (root.readonly false) keeps it instead of being raised to
	// read-only, and must then be created by CreateFromLayersWritable, whose upper layer holds
	// what the workload writes. Never set from a spec or a command line flag.
	WritableRoot bool
	// Events receives lifecycle events and raises; nil discards them.
	Events EventSink
	// Steps receives how long each step of a container's create, start, run and delete took
	// (see steps.go); nil discards them.
	Steps StepSink
}

// EventAccessRefused is the event of an operation refused because another tenant owns the
// container (attributes "tenant", the caller's, and "owner"); the caller was told the container
// does not exist.
const EventAccessRefused = "access.refused"

// EventSink receives what the runtime does, for the caller to audit.
type EventSink interface {
	Event(containerID, action string, attrs map[string]string)
}

// IO is the stdio given to a container's process. Nil members mean /dev/null.
type IO struct {
	Stdin          *os.File
	Stdout, Stderr *os.File
	// ConsoleSocket, when set, is the path of a unix socket that receives the pty master (runc's
	// --console-socket) when the process spec asks for a terminal.
	ConsoleSocket string
}

// DefaultTenant is the tenant of a caller that names none (containerd and Docker call bulwark-runc
// without --tenant) and the owner of a container whose state names none.
const DefaultTenant = "default"

// ErrNotExist is returned when no container has the given id, and for a container another tenant
// owns (with the same text: a tenant cannot tell the two apart).
var ErrNotExist = errdefs.New(errdefs.ErrNotFound, "container does not exist")

// ErrExist is returned when the id is already in use.
var ErrExist = errdefs.New(errdefs.ErrAlreadyExists, "container id already in use")

// ErrNotRunning is returned for a signal to the init of a container that is not running. Its
// text is runc's: containerd's shim matches "container not running" to treat the process as
// already finished.
var ErrNotRunning = errdefs.New(errdefs.ErrConflict, "container not running")

// ErrInvalidState is returned for an operation that the container's state does not allow.
var ErrInvalidState = errdefs.New(errdefs.ErrConflict, "operation not allowed in the container's state")
