// Package report defines the JSON document bulwark-probe prints from inside a sandbox, shared by
// the probe and the tests that assert on it, plus small helpers for those assertions.
package report

// Report is the probe's output. Sections not asked for are omitted.
type Report struct {
	Sections []string `json:"sections"`

	IDs      *IDs                `json:"ids,omitempty"`
	Caps     *Caps               `json:"caps,omitempty"`
	Status   *Status             `json:"status,omitempty"`
	NS       map[string]string   `json:"ns,omitempty"`
	Net      []Iface             `json:"net,omitempty"`
	Mounts   []Mount             `json:"mounts,omitempty"`
	FDs      map[string]string   `json:"fds,omitempty"`
	Cwd      *Cwd                `json:"cwd,omitempty"`
	Host     *Host               `json:"host,omitempty"`
	Rlimits  map[string]Rlimit   `json:"rlimits,omitempty"`
	Cgroup   *Cgroup             `json:"cgroup,omitempty"`
	Landlock *Landlock           `json:"landlock,omitempty"`
	Writable map[string]string   `json:"writable,omitempty"`
	Masked   map[string]Masked   `json:"masked,omitempty"`
	Dev      map[string]DevEntry `json:"dev,omitempty"`
	Etc      map[string]string   `json:"etc,omitempty"`
	Env      []string            `json:"env,omitempty"`
	// Owners maps rootfs paths to "uid:gid" as seen inside.
	Owners    map[string]string `json:"owners,omitempty"`
	Forbidden map[string]string `json:"forbidden,omitempty"`
	// ABI is the outcome of a system call through the i386 entry, made in a child process:
	// "SIGSYS" (or another signal) when seccomp killed it, "" when it succeeded, else the errno.
	ABI *string `json:"abi,omitempty"`

	Shocker   *Shocker   `json:"shocker,omitempty"`
	ExeWatch  *ExeWatch  `json:"exeWatch,omitempty"`
	ExecFrom  []ExecFrom `json:"execFrom,omitempty"`
	MemfdExec *MemfdExec `json:"memfdExec,omitempty"`
	Spawn     *Spawn     `json:"spawn,omitempty"`
	// TCP maps "bind:PORT" and "connect:PORT" on 127.0.0.1 to "" or the errno name.
	TCP map[string]string `json:"tcp,omitempty"`

	// Errors lists sections that could not be gathered, so a test sees why a field is missing.
	Errors map[string]string `json:"errors,omitempty"`
}

// IDs are the process credentials and the user namespace's id maps.
type IDs struct {
	UID       int     `json:"uid"`
	EUID      int     `json:"euid"`
	GID       int     `json:"gid"`
	EGID      int     `json:"egid"`
	Groups    []int   `json:"groups"`
	UIDMap    []IDMap `json:"uidMap"`
	GIDMap    []IDMap `json:"gidMap"`
	SetGroups string  `json:"setgroups"`
}

// IDMap is one line of /proc/self/uid_map or gid_map.
type IDMap struct {
	Inside  uint32 `json:"inside"`
	Outside uint32 `json:"outside"`
	Count   uint32 `json:"count"`
}

// Caps are the five capability sets from /proc/self/status, as bit masks.
type Caps struct {
	Inh uint64 `json:"inh"`
	Prm uint64 `json:"prm"`
	Eff uint64 `json:"eff"`
	Bnd uint64 `json:"bnd"`
	Amb uint64 `json:"amb"`
}

// Status holds the /proc/self/status fields about privilege and seccomp.
type Status struct {
	NoNewPrivs     int    `json:"noNewPrivs"`
	Seccomp        int    `json:"seccomp"`
	SeccompFilters int    `json:"seccompFilters"`
	Dumpable       int    `json:"dumpable"`
	Pid            int    `json:"pid"`
	PPid           int    `json:"ppid"`
	Exe            string `json:"exe"`
	// Label is /proc/self/attr/current: the SELinux context or AppArmor profile, or the errno
	// when no such LSM is active.
	Label string `json:"label"`
}

// Rlimit is one resource limit; -1 means unlimited.
type Rlimit struct {
	Cur int64 `json:"cur"`
	Max int64 `json:"max"`
}

// Host is what the UTS namespace and the generated /etc files say.
type Host struct {
	Hostname   string `json:"hostname"`
	Domainname string `json:"domainname"`
}

// Mount is one line of /proc/self/mountinfo.
type Mount struct {
	ID         int      `json:"id"`
	Parent     int      `json:"parent"`
	Dev        string   `json:"dev"` // major:minor of the filesystem
	Root       string   `json:"root"`
	Mountpoint string   `json:"mountpoint"`
	Options    []string `json:"options"`
	FSType     string   `json:"fstype"`
	Source     string   `json:"source"`
	Super      []string `json:"superOptions"`
}

// Cwd is the working directory and whether walking up from it ends at this process's root: a cwd
// on a leaked host directory (CVE-2024-21626) walks up to the host root instead.
type Cwd struct {
	Path   string `json:"path"`
	Error  string `json:"error,omitempty"`
	InRoot bool   `json:"inRoot"`
	// FSMagic and Entries describe the directory itself, to tell what a cwd outside the root is.
	FSMagic string   `json:"fsMagic"`
	Entries []string `json:"entries,omitempty"`
	UpSteps int      `json:"upSteps"`
}

// Cgroup is the process's cgroup membership and, when a cgroupfs is visible, the limits it reads.
type Cgroup struct {
	Lines  []string          `json:"lines"`
	Limits map[string]string `json:"limits,omitempty"`
	// Procs maps each cgroupfs mount point inside to the pids its root cgroup.procs lists (0: a
	// process outside the container's pid namespace, i.e. the host's cgroup).
	Procs map[string][]int `json:"procs,omitempty"`
}

// Iface is a network interface of the process's network namespace.
type Iface struct {
	Name  string `json:"name"`
	Up    bool   `json:"up"`
	Flags string `json:"flags"`
}

// Masked describes a path the floor must mask: either absent, unreadable, or empty.
type Masked struct {
	Exists  bool `json:"exists"`
	Dir     bool `json:"dir"`
	Entries int  `json:"entries"`
	Bytes   int  `json:"bytes"`
	// CharDev is set when the path is a character device: the usual mask is a /dev/null bind.
	CharDev bool `json:"charDev"`
	// WriteOpen is the errno of opening for writing ("" when it opened); only for control files.
	WriteOpen string `json:"writeOpen,omitempty"`
	Error     string `json:"error,omitempty"`
}

// DevEntry is one node under /dev.
type DevEntry struct {
	Type  string `json:"type"`
	Major uint32 `json:"major,omitempty"`
	Minor uint32 `json:"minor,omitempty"`
	Link  string `json:"link,omitempty"`
}

// Landlock reports the kernel's Landlock ABI and the errno of two accesses its ruleset must deny.
type Landlock struct {
	ABI      int    `json:"abi"`
	ABIError string `json:"abiError,omitempty"`
	// DevCreate is the errno of creating a file in /dev: a writable tmpfs for the filesystem, so
	// only Landlock (when /dev is not among its writable paths) refuses it.
	DevCreate string `json:"devCreate"`
}

// ExecFrom is the outcome of copying the probe into a writable directory and executing the copy:
// W^X means the copy can be written but never executed.
type ExecFrom struct {
	Dir       string `json:"dir"`
	CopyError string `json:"copyError"`
	ExecError string `json:"execError"`
	NoExec    bool   `json:"noexecMount"`
}

// MemfdExec is the outcome of running a copy of the probe from a memfd (bytes not in the image).
// Each field is "" on success, else the errno name.
type MemfdExec struct {
	// Sysctl is vm.memfd_noexec as read inside (per pid namespace), or the errno of reading it.
	Sysctl string `json:"sysctl"`
	// CreateExec is memfd_create(MFD_EXEC): an explicitly executable memfd.
	CreateExec string `json:"createExec"`
	// Create is memfd_create(MFD_CLOEXEC) and the copy into it.
	Create string `json:"create"`
	// Chmod is fchmod(0755) of the memfd ("ok" when it succeeded).
	Chmod string `json:"chmod"`
	// Exec is execve of /proc/self/fd/N (as fexecve and execveat with AT_EMPTY_PATH).
	Exec string `json:"exec"`
}

// Shocker is the outcome of the 2014 Shocker breakout: open_by_handle_at with a guessed handle for
// a filesystem's root inode, relative to any descriptor on that filesystem, opens host files
// outside the container's root. It needs the syscall (seccomp) and CAP_DAC_READ_SEARCH.
type Shocker struct {
	Attempts int            `json:"attempts"`
	Errnos   map[string]int `json:"errnos"`
	// Opened lists what a successful handle resolved to: any entry is an escape.
	Opened []string `json:"opened,omitempty"`
	// CapDacReadSearch tells whether the capability is in the effective or bounding set.
	CapDacReadSearch bool `json:"capDacReadSearch"`
}

// ExeWatch is the outcome of CVE-2019-5736's race from inside: every process that appears in the
// sandbox (a runtime entering it for exec first of all) has its /proc/PID/exe opened for writing,
// directly and through an O_PATH descriptor kept after the process exits or execs. Nothing is
// ever written: one successful open is already the escape.
type ExeWatch struct {
	Seen []ExeSeen `json:"seen"`
	// WriteOpened counts the opens for writing that succeeded: must stay 0.
	WriteOpened int `json:"writeOpened"`
}

// ExeSeen records one foreign process.
type ExeSeen struct {
	Pid     int            `json:"pid"`
	Exe     string         `json:"exe"`
	Direct  string         `json:"direct"`
	OPath   string         `json:"opath"`
	Reopen  map[string]int `json:"reopen"`
	opathFD int
}

// MountAt returns the mount that covers path: the last-mounted entry whose mountpoint is path or
// its longest ancestor (later entries stack on earlier ones). Nil if none.
func (r *Report) MountAt(path string) *Mount {
	var best *Mount
	for i := range r.Mounts {
		m := &r.Mounts[i]
		if !covers(m.Mountpoint, path) {
			continue
		}
		if best == nil || len(m.Mountpoint) >= len(best.Mountpoint) {
			best = m
		}
	}
	return best
}

// Has reports whether opt is among the mount's per-mount or superblock options.
func (m *Mount) Has(opt string) bool {
	for _, o := range m.Options {
		if o == opt {
			return true
		}
	}
	for _, o := range m.Super {
		if o == opt {
			return true
		}
	}
	return false
}

func covers(mountpoint, path string) bool {
	if mountpoint == "/" || mountpoint == path {
		return true
	}
	return len(path) > len(mountpoint) && path[:len(mountpoint)] == mountpoint && path[len(mountpoint)] == '/'
}

// Spawn is how many children could be started before the first failure, and its errno.
type Spawn struct {
	Started int    `json:"started"`
	Error   string `json:"error,omitempty"`
}
