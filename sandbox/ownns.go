package sandbox

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/sandbox/internal/idmap"
	"bulwark.dev/bulwark/sandbox/internal/userns"
)

// apartTypes are the namespace types a container's init joins on the thread that forks it: its
// pod's, or new ones made in its own user namespace apart from the setup child (ownNS).
var apartTypes = []specs.LinuxNamespaceType{specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace}

// ownNS is a new container's own user namespace and, made in it and owned by it, each of its
// network, ipc and uts namespaces it does not join (a pod's), being made beside the cgroup and
// the id range (the network namespace alone costs the kernel ~0.7 ms); nothing when it joins its
// pod's user namespace. Made apart, they are joined by the setup child as a pod's are — the same
// ownership as when the child unshared them inside the user namespace.
type ownNS struct {
	flags  int // the clone flags of the namespaces made besides the user namespace
	holder func() (*userns.Holder, error)
}

// makeOwnNS starts making the container's own namespaces (see ownNS).
func makeOwnNS(join *joined) *ownNS {
	n := &ownNS{}
	if join.has(specs.UserNamespace) {
		return n
	}
	for _, t := range apartTypes {
		if !join.has(t) {
			n.flags |= nsFlags[t]
		}
	}
	n.holder = async(func() (*userns.Holder, error) { return userns.Start(n.flags) })
	return n
}

// open maps the user namespace to rng and returns a descriptor of it and of each namespace made
// in it, by type; the holder is released (the descriptors keep the namespaces).
func (n *ownNS) open(rng idmap.Range) (fds map[specs.LinuxNamespaceType]int, err error) {
	h, err := n.holder()
	if err != nil {
		return nil, err
	}
	defer h.Release()
	fds = map[specs.LinuxNamespaceType]int{}
	defer func() {
		if err != nil {
			closeNS(fds)
		}
	}()
	if err := h.Map(rng.UIDBase, rng.GIDBase, rng.Size); err != nil {
		return nil, err
	}
	for t, name := range map[specs.LinuxNamespaceType]string{specs.UserNamespace: "user", specs.NetworkNamespace: "net", specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts"} {
		if t != specs.UserNamespace && n.flags&nsFlags[t] == 0 {
			continue
		}
		fd, err := h.Open(name)
		if err != nil {
			return nil, err
		}
		fds[t] = fd
	}
	return fds, nil
}

// namespaces returns the user namespace a container's init starts in — its pod's, or its own,
// mapped to rng — and the namespaces made with its own, by type (the user namespace among them),
// for the caller to close (closeNS).
func (n *ownNS) namespaces(join *joined, rng idmap.Range) (int, map[specs.LinuxNamespaceType]int, error) {
	if join.has(specs.UserNamespace) {
		return join.fds[specs.UserNamespace], nil, nil
	}
	made, err := n.open(rng)
	if err != nil {
		return -1, nil, err
	}
	return made[specs.UserNamespace], made, nil
}

// release ends the holder of namespaces not opened (an undone create).
func (n *ownNS) release() {
	if n.holder == nil {
		return
	}
	if h, err := n.holder(); err == nil {
		h.Release()
	}
}

func closeNS(fds map[specs.LinuxNamespaceType]int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
