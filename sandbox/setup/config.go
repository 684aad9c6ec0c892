package setup

import (
	"bulwark.dev/bulwark/sandbox/internal/landlock"
	"bulwark.dev/bulwark/sandbox/internal/mac/macexec"
)

// Config is the plan the parent sends the child in the config message: everything the child
// needs, already decided. The child makes no policy choices of its own.
type Config struct {
	ID            string
	Hostname      string
	Domainname    string
	Mounts        []MountPlan
	MaskedPaths   []string
	ReadonlyPaths []string
	Sysctl        map[string]string
	Files         []FilePlan
	Cgroups       []CgroupView
	Process       ProcessPlan
	// NetJoined says the container joins an existing network namespace (the pod model).
	NetJoined bool
	// Donated descriptors, by name: indices into the config message's SCM_RIGHTS list, -1 if none.
	RootfsFD int // detached idmapped mount of the rootfs (Create only)
	FifoFD   int // exec fifo opened O_RDWR; init blocks reading it (Create only)
	// MaskDirFD is a detached read-only clone of the runtime's shared empty directory, which
	// covers every masked directory; CgroupSkelFD one of its shared cgroup skeleton (a directory
	// per Cgroups view, by name). -1: the child makes them in its staging tmpfs.
	MaskDirFD    int
	CgroupSkelFD int
	// WritableRoot leaves the root writable once pivoted (CreateFromLayersWritable).
	WritableRoot bool
}

// MountPlan is one mount in the container. Bind mounts arrive as detached trees made by the parent
// (SrcFD), since the child, an unprivileged host uid, may not even be able to resolve the source.
type MountPlan struct {
	Dest   string
	Type   string
	Source string
	Flags  uintptr
	Data   string
	SrcFD  int
	// Scratch marks the floor's own /tmp, /run and /var/tmp tmpfs mounts: adjacent ones are
	// directories of one superblock, made with the first's data (mountScratch).
	Scratch bool
	// Devices marks the runtime's /dev (a bind of the tmpfs it donated, which holds the minimal
	// device nodes already): the child adds the links only.
	Devices bool
}

// CgroupView is one cgroup hierarchy the container is placed in, mounted read-only (its own
// subtree, through its cgroup namespace) where a "cgroup2" mount asks for the container's cgroups.
type CgroupView struct {
	// Name is the directory under that mount ("memory", "systemd", "unified"); "" for a pure v2
	// host, whose single hierarchy is mounted at the destination itself.
	Name    string
	Unified bool
	// Options name a v1 hierarchy ("cpu,cpuacct", "name=systemd").
	Options string
}

// FilePlan is a generated file (/etc/hosts, /etc/hostname, /etc/resolv.conf) mounted read-only
// from the runtime's shared copy (donateGenerated) or from the child's staging tmpfs; host files
// are never bind-mounted for these.
type FilePlan struct {
	Dest    string
	Content string
	// SrcFD is the donated read-only clone of the runtime's shared copy (an index into the
	// config message's descriptors, Content then left out), or -1: the child writes Content
	// into its staging tmpfs.
	SrcFD int
}

// ProcessPlan is the confinement and identity of the process the child finally executes.
type ProcessPlan struct {
	Args        []string
	Env         []string
	Cwd         string
	UID         uint32
	GID         uint32
	Groups      []uint32
	Caps        uint64
	Rlimits     []RlimitPlan
	Terminal    bool
	Rows        uint16
	Cols        uint16
	OOMScoreAdj *int
	MAC         macexec.Container
	Landlock    landlock.Rules
	Seccomp     []SeccompBlob
}

// RlimitPlan is one resource limit of the process.
type RlimitPlan struct {
	Resource int
	Soft     uint64
	Hard     uint64
}

// SeccompBlob is a compiled seccomp program as it crosses the setup channel: the child loads it
// without cgo or libseccomp.
type SeccompBlob struct {
	Digest string
	Flags  uint
	BPF    []byte // raw struct sock_filter, native byte order
}
