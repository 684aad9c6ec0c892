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
// socket(2) refusals of the default seccomp allowlist, once per process.
var networkFloor = sync.OnceValue(func() NetworkFloor {
	return NetworkFloor{
		Namespace:      "private",
		TCP:            "no port rule: bind and connect are free inside the container's own network namespace",
		RefusedSockets: defaultRefusedSockets(profiles.DefaultSeccompSum()),
	}
})

// refusedSockets are the socket(2) refusals of the default allowlist whose SHA-256 is
// defaultProfileSum, as refusedSocketsOf reads them (TestRefusedSocketsKept fails until they are
// updated): the floor's description of them is on every start's path before its policy decision,
// and reading them from the profile (its rules copied with their comments) is not.
var refusedSockets = []RefusedSocket{
	{Errno: "EPERM", Reason: "other netlink families answer EPERM."},
	{Errno: "EPERM", Reason: "protocols above 255, which includes IPPROTO_MPTCP (262), answer EPERM: Landlock and most tooling do not see MPTCP, and workloads need plain TCP only (Go and other MPTCP-first libraries fall back to TCP)."},
	{Errno: "EPERM", Reason: "SOCK_RAW answers EPERM (packet forging and sniffing)."},
	{Errno: "EPERM", Reason: "AF_PACKET answers EPERM (raw link-layer access). Any other family or combination answers ENOSYS."},
}

// refusedSocketsJSON is json.Marshal(refusedSockets) (TestRefusedSocketsKept): every start's
// audit trail records the floor's network description, and encoding these reasons was ≈ 10 µs of
// the policy step, the first use of that code in a process.
const refusedSocketsJSON = `[{"errno":"EPERM","reason":"other netlink families answer EPERM."},{"errno":"EPERM","reason":"protocols above 255, which includes IPPROTO_MPTCP (262), answer EPERM: Landlock and most tooling do not see MPTCP, and workloads need plain TCP only (Go and other MPTCP-first libraries fall back to TCP)."},{"errno":"EPERM","reason":"SOCK_RAW answers EPERM (packet forging and sniffing)."},{"errno":"EPERM","reason":"AF_PACKET answers EPERM (raw link-layer access). Any other family or combination answers ENOSYS."}]`

// RefusedSocketsJSON is json.Marshal(rs) when rs are the floor's own refusals of the embedded
// profile, kept as text with them; ok is false for any other list (the caller encodes it).
func RefusedSocketsJSON(rs []RefusedSocket) (text string, ok bool) {
	if rs == nil || !slices.Equal(rs, refusedSockets) {
		return "", false
	}
	return refusedSocketsJSON, true
}

// defaultRefusedSockets are the default allowlist's socket(2) refusals: refusedSockets when sum,
// the embedded profile's, is the one they were read from; otherwise read from the profile.
func defaultRefusedSockets(sum string) []RefusedSocket {
	if sum == defaultProfileSum {
		return slices.Clone(refusedSockets)
	}
	return refusedSocketsOf(profiles.DefaultSeccompNotes())
}

// refusedSocketsOf reads the socket(2) refusals from the rules of a profile as shipped: each
// rule that answers socket with an errno and says why in its comment.
func refusedSocketsOf(rules []profiles.SeccompRuleNote) []RefusedSocket {
	var out []RefusedSocket
	for _, r := range rules {
		if !slices.Contains(r.Names, "socket") || r.Action != specs.ActErrno || r.Comment == "" {
			continue
		}
		errno := "EPERM"
		if r.ErrnoRet != nil {
			errno = unix.ErrnoName(unix.Errno(*r.ErrnoRet))
		}
		reason := strings.TrimPrefix(r.Comment, "socket: ")
		if !slices.ContainsFunc(out, func(s RefusedSocket) bool { return s.Reason == reason }) {
			out = append(out, RefusedSocket{Errno: errno, Reason: reason})
		}
	}
	return out
}
