package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/openat2"
	"bulwark.dev/bulwark/internal/procstat"
)

// The pod model. Every container gets new namespaces, with two exceptions, both proved by the
// kernel's identity of the namespace (its nsfs device and inode), never by the path a spec names:
//
//   - "pod": a container joins the network, ipc and uts namespaces (and with them the user
//     namespace and id range) of its pod's sandbox container — one this runtime created for the
//     same tenant, whose id is the pod's (AnnotationSandboxID) and whose record says it is the
//     sandbox (AnnotationContainerType), found by comparing the namespace with those of the
//     recorded init of every container under the state root (opened through a pidfd, so a
//     recycled pid never lends its namespaces).
//   - "netns": a network namespace that no container here holds and that is not the host's,
//     bind-mounted at a real path and owned by the host's user namespace: the one the CNI caller
//     (containerd) made for a pod. FloorResult.Joins shows it with its real location; policy
//     decides whether the caller's directory is trusted.
//
// Everything else — the host's namespaces, another tenant's or another pod's, a pid or mount
// namespace, a namespace of an unknown process — is refused with the reason.
//
//	ResolveBinds: open each namespace path once (descriptor, nsfs type, device+inode, location)
//	→ Floor (resolved): identify each (host? a recorded init's? owner user namespace?) → Joins
//	→ gate: policy on the request document → Create: setns from the same descriptors

// CRI annotations (containerd's CRI plugin sets them on every sandbox and container spec).
const (
	// AnnotationSandboxID names the pod: its sandbox container's id.
	AnnotationSandboxID = "io.kubernetes.cri.sandbox-id"
	// AnnotationContainerType is "sandbox" for the pod's sandbox (pause) container.
	AnnotationContainerType = "io.kubernetes.cri.container-type"
	// AnnotationSandboxUID is the pod's uid (kubelet's /var/lib/kubelet/pods/<uid>).
	AnnotationSandboxUID = "io.kubernetes.cri.sandbox-uid"
)

// The kinds of Join.
const (
	JoinPod   = "pod"
	JoinNetns = "netns"
)

// Join is one existing namespace the floor lets a container join, and why (see the pod model).
type Join struct {
	Type string `json:"type"`
	// Path is the namespace file's real location (a bind-mounted namespace), or the path the
	// spec names for a process's namespace (/proc/<pid>/ns/<type>).
	Path string `json:"path"`
	// Kind is JoinPod or JoinNetns.
	Kind string `json:"kind"`
	// Pod is the sandbox container whose namespace it is (JoinPod).
	Pod string `json:"pod,omitempty"`
}

// nsFiles are the /proc/<pid>/ns entries of each namespace type.
var nsFiles = map[specs.LinuxNamespaceType]string{
	specs.PIDNamespace: "pid", specs.NetworkNamespace: "net", specs.MountNamespace: "mnt",
	specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts", specs.UserNamespace: "user",
	specs.CgroupNamespace: "cgroup", specs.TimeNamespace: "time",
}

// nsFlags are the clone flags of each namespace type (NS_GET_NSTYPE answers with them).
var nsFlags = map[specs.LinuxNamespaceType]int{
	specs.PIDNamespace: unix.CLONE_NEWPID, specs.NetworkNamespace: unix.CLONE_NEWNET, specs.MountNamespace: unix.CLONE_NEWNS,
	specs.IPCNamespace: unix.CLONE_NEWIPC, specs.UTSNamespace: unix.CLONE_NEWUTS, specs.UserNamespace: unix.CLONE_NEWUSER,
	specs.CgroupNamespace: unix.CLONE_NEWCGROUP, specs.TimeNamespace: unix.CLONE_NEWTIME,
}

// podJoinable are the namespace types a container may share with its pod's sandbox.
var podJoinable = map[specs.LinuxNamespaceType]bool{
	specs.NetworkNamespace: true, specs.IPCNamespace: true, specs.UTSNamespace: true, specs.UserNamespace: true,
}

// nsSource is a namespace a spec names by path, opened once.
type nsSource struct {
	asked string
	// location is the real path of a namespace file bind-mounted somewhere; "" when the path
	// ends in a link (/proc/<pid>/ns/<type>), which names a process, not a place.
	location string
	fd       int
	dev, ino uint64
	// err is why the path could not be opened as a namespace (fd -1).
	err error
}

// joined is what the floor decided for the namespaces of one spec: the descriptors Create
// joins, by type (the user namespace of a pod's sandbox included when the spec names none).
type joined struct {
	fds  map[specs.LinuxNamespaceType]int
	pod  *stateFile // the sandbox container of a pod join
	list []Join
}

// openNamespace resolves a namespace path once: the directory without magic links, then the
// file itself (a bind-mounted namespace has a real location; a /proc link is followed), and
// checks it is a namespace of the asked type.
func openNamespace(typ specs.LinuxNamespaceType, p string) (*nsSource, error) {
	if !filepath.IsAbs(p) {
		return nil, floorErr("%s namespace path %q is not absolute", typ, p)
	}
	dir, err := openat2.Open(unix.AT_FDCWD, filepath.Dir(p), &unix.OpenHow{
		Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, fmt.Errorf("%s namespace %s: %w", typ, p, err)
	}
	defer unix.Close(dir)
	realDir, err := os.Readlink(fdPath(dir))
	if err != nil {
		return nil, fmt.Errorf("%s namespace %s: %w", typ, p, err)
	}
	s := &nsSource{asked: p}
	base := filepath.Base(p)
	fd, err := unix.Openat(dir, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ELOOP) {
		fd, err = unix.Openat(dir, base, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	} else if err == nil {
		s.location = filepath.Join(realDir, base)
	}
	if err != nil {
		return nil, fmt.Errorf("%s namespace %s: %w", typ, p, err)
	}
	s.fd = fd
	var fs unix.Statfs_t
	var st unix.Stat_t
	if err := unix.Fstatfs(fd, &fs); err != nil || fs.Type != unix.NSFS_MAGIC || unix.Fstat(fd, &st) != nil {
		unix.Close(fd)
		return nil, floorErr("%s namespace %s is not a namespace file", typ, p)
	}
	if t, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE); err != nil || t != nsFlags[typ] {
		unix.Close(fd)
		return nil, floorErr("%s namespace %s is a namespace of another type", typ, p)
	}
	s.dev, s.ino = st.Dev, st.Ino
	return s, nil
}

// nsID is a namespace's identity.
type nsID struct{ dev, ino uint64 }

func statNS(path string) (nsID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nsID{}, err
	}
	return nsID{st.Dev, st.Ino}, nil
}

// openInitNS opens a namespace of a container's recorded init through a pidfd: the pidfd is
// taken and checked against the recorded start time first, and still refers to a live process
// after the open, so the namespace is init's even if its pid is recycled at any point.
func openInitNS(st *stateFile, file string) (int, error) {
	if st.Pid <= 0 || st.InitStartTime == 0 {
		return -1, errors.New("no init")
	}
	pfd, err := unix.PidfdOpen(st.Pid, 0)
	if err != nil {
		return -1, fmt.Errorf("pidfd_open %d: %w", st.Pid, err)
	}
	defer unix.Close(pfd)
	if procstat.StartTime(st.Pid) != st.InitStartTime {
		return -1, errors.New("init is gone")
	}
	fd, err := unix.Open("/proc/"+strconv.Itoa(st.Pid)+"/ns/"+file, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.PidfdSendSignal(pfd, 0, nil, 0); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("init is gone: %w", err)
	}
	return fd, nil
}

// nsHolder returns the state of container id (of any tenant) if its live init holds the
// namespace id of type file, or nil.
func (r *Runtime) nsHolder(cid, file string, id nsID) *stateFile {
	if checkID(cid) != nil {
		return nil
	}
	st, err := readState(r.containerDir(cid))
	if err != nil || !st.initAlive() {
		return nil
	}
	fd, err := openInitNS(st, file)
	if err != nil {
		return nil
	}
	defer unix.Close(fd)
	var s unix.Stat_t
	if unix.Fstat(fd, &s) != nil || s.Dev != id.dev || s.Ino != id.ino {
		return nil
	}
	return st
}

// nsOwner returns a container (of any tenant) under the state root whose live init holds the
// namespace id of type file, or nil.
func (r *Runtime) nsOwner(file string, id nsID) *stateFile {
	ents, _ := os.ReadDir(filepath.Join(r.opts.Root, "containers"))
	for _, e := range ents {
		if st := r.nsHolder(e.Name(), file, id); st != nil {
			return st
		}
	}
	return nil
}

// isHostNS reports whether id is a namespace of the host of type file: pid 1's, or the runtime's
// own (its caller's: containerd's). Pid 1's may be unreadable (EACCES where pid 1 is another
// sandbox's supervisor); the runtime's own always is, and an error there answers true.
func isHostNS(file string, id nsID) bool {
	self, err := statNS("/proc/self/ns/" + file)
	if err != nil || self == id {
		return true
	}
	init, err := statNS("/proc/1/ns/" + file)
	return err == nil && init == id
}

// hostUserns reports whether the namespace at fd is owned by the host's user namespace.
func hostUserns(fd int) bool {
	u, err := unix.IoctlRetInt(fd, unix.NS_GET_USERNS)
	if err != nil {
		return false
	}
	defer unix.Close(u)
	var st unix.Stat_t
	return unix.Fstat(u, &st) == nil && isHostNS("user", nsID{st.Dev, st.Ino})
}

// identify decides one namespace a spec asks to join: the Join it is, or the reason it is not.
func (r *Runtime) identify(typ specs.LinuxNamespaceType, src *nsSource, ann map[string]string, pod **stateFile) (Join, string) {
	file := nsFiles[typ]
	id := nsID{src.dev, src.ino}
	what := fmt.Sprintf("joining the %s namespace at %s", typ, src.asked)
	if isHostNS(file, id) {
		return Join{}, what + " is refused: it is the host's"
	}
	// The pod's sandbox first: the pod's other containers hold its namespaces too.
	owner := r.nsHolder(ann[AnnotationSandboxID], file, id)
	if owner == nil {
		owner = r.nsOwner(file, id)
	}
	if owner != nil {
		sandbox := ann[AnnotationSandboxID]
		switch {
		case owner.owner() != r.opts.Tenant || sandbox == "" || owner.ID != sandbox ||
			owner.Annotations[AnnotationContainerType] != "sandbox" || owner.Annotations[AnnotationSandboxID] != owner.ID:
			return Join{}, what + " is refused: it is not a namespace of this pod's sandbox container (same pod, same tenant)"
		case !podJoinable[typ]:
			return Join{}, what + " is refused: a pod shares only its network, ipc, uts and user namespaces"
		case *pod != nil && (*pod).ID != owner.ID:
			return Join{}, what + " is refused: the spec joins namespaces of two pods"
		}
		*pod = owner
		return Join{Type: string(typ), Path: src.asked, Kind: JoinPod, Pod: owner.ID}, ""
	}
	if typ != specs.NetworkNamespace || src.location == "" {
		return Join{}, what + " is refused: it is not a namespace of this pod's sandbox container (a container joins only its pod's)"
	}
	if !hostUserns(src.fd) {
		return Join{}, what + " is refused: it was made inside a user namespace, not by the container runtime's caller"
	}
	return Join{Type: string(typ), Path: src.location, Kind: JoinNetns}, ""
}

func (j *joined) add(typ specs.LinuxNamespaceType, fd int, jn Join) {
	if j.fds == nil {
		j.fds = map[specs.LinuxNamespaceType]int{}
	}
	j.fds[typ] = fd
	j.list = append(j.list, jn)
}

// join decides one namespace path of the spec: joined (recorded in f.joined) or refused.
func (f *floor) join(ns specs.LinuxNamespace) (Join, bool) {
	refuse := func(reason string) (Join, bool) {
		f.refuse(RefusedNamespace, string(ns.Type), ns.Path, reason)
		return Join{}, false
	}
	var src *nsSource
	if f.srcs != nil {
		src = f.srcs.ns[ns.Type]
	}
	if f.rt == nil || src == nil || src.asked != ns.Path {
		return refuse(fmt.Sprintf("joining an existing %s namespace (%s) is refused: every container gets fresh namespaces "+
			"(a pod's are joined only when resolved first)", ns.Type, ns.Path))
	}
	if src.err != nil {
		return refuse(fmt.Sprintf("joining the %s namespace at %s is refused: %v", ns.Type, ns.Path, src.err))
	}
	j, reason := f.rt.identify(ns.Type, src, f.spec.Annotations, &f.joined.pod)
	if reason != "" {
		return refuse(reason)
	}
	fd, err := unix.FcntlInt(uintptr(src.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return refuse(fmt.Sprintf("joining the %s namespace at %s: %v", ns.Type, ns.Path, err))
	}
	f.joined.add(ns.Type, fd, j)
	return j, true
}

// close releases the descriptors the floor opened for a decision.
func (j *joined) close() {
	if j == nil {
		return
	}
	for _, fd := range j.fds {
		unix.Close(fd)
	}
	j.fds = nil
}

// setJoined keeps the floor's latest decision on srcs' namespaces for Create.
func (b *BindSources) setJoined(j *joined) {
	b.joined.close()
	b.joined = j
}

// openNamespaces resolves every namespace path of spec into b.
func (b *BindSources) openNamespaces(spec *specs.Spec) error {
	if spec.Linux == nil {
		return nil
	}
	for _, ns := range spec.Linux.Namespaces {
		if ns.Path == "" || b.ns[ns.Type] != nil {
			continue
		}
		if _, ok := nsFlags[ns.Type]; !ok {
			return floorErr("unknown namespace type %q", ns.Type)
		}
		s, err := openNamespace(ns.Type, ns.Path)
		if err != nil {
			// Refused by the floor with the reason (policy lists it with the rest).
			s = &nsSource{asked: ns.Path, fd: -1, err: err}
		}
		if b.ns == nil {
			b.ns = map[specs.LinuxNamespaceType]*nsSource{}
		}
		b.ns[ns.Type] = s
	}
	return nil
}

// joinedType reports whether the floor lets the container join an existing namespace of type t.
func (f *floor) joinedType(t specs.LinuxNamespaceType) bool {
	_, ok := f.joined.fds[t]
	return ok
}

func (s *nsSource) close() {
	if s.fd >= 0 {
		unix.Close(s.fd)
	}
}

// Pod is the pod the container id belongs to, as the floor proved it: the pod whose sandbox's
// namespaces it joins, or its own when it is a pod's sandbox (the CRI annotations name it as its
// own pod); "" outside a pod.
func (r *FloorResult) Pod(id string) string {
	for _, j := range r.Joins {
		if j.Kind == JoinPod {
			return j.Pod
		}
	}
	ann := r.Spec.Annotations
	if id != "" && ann[AnnotationContainerType] == "sandbox" && ann[AnnotationSandboxID] == id {
		return id
	}
	return ""
}
