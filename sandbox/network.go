package sandbox

import (
	"slices"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/profiles"
)

// NetworkFloor is what the floor does to a container's networking, as data, so that a decision,
// a dry run and the audit trail say it (a refused socket call is never a bare errno nobody can
// trace).
type NetworkFloor struct {
	// Namespace is always "private": the container gets a new network namespace, which holds only
	// loopback unless the engine attaches it to a network.
	Namespace string `json:"namespace"`
	// TCP says what limits bind and connect inside that namespace. The floor sets no port rule
	// (Landlock's are port-only and cannot tell loopback from the world): the namespace and the
	// network it is attached to are the boundary.
	TCP string `json:"tcp"`
	// RefusedSockets are the socket kinds the floor's seccomp allowlist refuses, each with the
	// errno the caller gets and why.
	RefusedSockets []RefusedSocket `json:"refusedSockets"`
}

// RefusedSocket is one kind of socket(2) call the floor's seccomp allowlist refuses.
type RefusedSocket struct {
	Errno  string `json:"errno"`
	Reason string `json:"reason"`
}

// RefusedAnnotation names an annotation the floor refuses (Refusal.Field).
const RefusedAnnotation = "annotations"

// retiredAnnotations opened TCP ports through Landlock. They are refused rather than ignored: a
// spec that carries one expects a port rule that no longer exists.
var retiredAnnotations = []string{"dev.bulwark.landlock.bind-tcp", "dev.bulwark.landlock.connect-tcp"}

// network refuses the retired Landlock TCP annotations.
func (f *floor) network() error {
	for _, a := range retiredAnnotations {
		v, ok := f.spec.Annotations[a]
		if !ok {
			continue
		}
		f.refuse(RefusedAnnotation, a, v, a+" is no longer supported: the floor sets no TCP port rule "+
			"(a container binds and connects freely inside its own network namespace, loopback only "+
			"unless attached to a network); remove the annotation")
		delete(f.spec.Annotations, a)
	}
	return nil
}

// networkFloor describes the floor's networking: the private namespace, no port rule, and the
// socket(2) refusals of the default seccomp allowlist, read (with their comments) from the
// profile as shipped (the process's one parse of it), once per process.
var networkFloor = sync.OnceValue(func() NetworkFloor {
	n := NetworkFloor{
		Namespace: "private",
		TCP:       "no port rule: bind and connect are free inside the container's own network namespace",
	}
	for _, r := range profiles.DefaultSeccompNotes() {
		if !slices.Contains(r.Names, "socket") || r.Action != specs.ActErrno || r.Comment == "" {
			continue
		}
		errno := "EPERM"
		if r.ErrnoRet != nil {
			errno = unix.ErrnoName(unix.Errno(*r.ErrnoRet))
		}
		reason := strings.TrimPrefix(r.Comment, "socket: ")
		if !slices.ContainsFunc(n.RefusedSockets, func(s RefusedSocket) bool { return s.Reason == reason }) {
			n.RefusedSockets = append(n.RefusedSockets, RefusedSocket{Errno: errno, Reason: reason})
		}
	}
	return n
})
