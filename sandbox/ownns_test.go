package sandbox

import (
	"fmt"
	"testing"

	"golang.org/x/sys/unix"
)

// Every namespace of a container's init is new and owned by the container's own user namespace,
// a child of the host's: those made apart from the setup child (network, ipc, uts: ownNS) as
// those it makes itself (mount, pid, cgroup) — what one clone of all of them inside the user
// namespace gives.
func TestNamespacesOwnedByUserNamespace(t *testing.T) {
	needRoot(t)
	leakCheck(t, "ownns1")
	r := newTestRuntime(t)
	bundle, spec := busyboxBundle(t)
	c := startSleeper(t, r, "ownns1", bundle, spec)
	st, err := c.State()
	if err != nil {
		t.Fatal(err)
	}
	proc := fmt.Sprintf("/proc/%d/ns/", st.Pid)
	user := nsFD(t, proc+"user")
	if nsStat(t, user) == nsStat(t, nsFD(t, "/proc/self/ns/user")) {
		t.Fatal("init is in the host's user namespace")
	}
	parent, err := unix.IoctlRetInt(user, unix.NS_GET_PARENT)
	if err != nil {
		t.Fatalf("NS_GET_PARENT: %v", err)
	}
	defer unix.Close(parent)
	if nsStat(t, parent) != nsStat(t, nsFD(t, "/proc/self/ns/user")) {
		t.Error("the container's user namespace is not a child of the host's")
	}
	for _, name := range []string{"net", "ipc", "uts", "mnt", "pid", "cgroup"} {
		fd := nsFD(t, proc+name)
		if nsStat(t, fd) == nsStat(t, nsFD(t, "/proc/self/ns/"+name)) {
			t.Errorf("init is in the host's %s namespace", name)
			continue
		}
		owner, err := unix.IoctlRetInt(fd, unix.NS_GET_USERNS)
		if err != nil {
			t.Fatalf("%s: NS_GET_USERNS: %v", name, err)
		}
		if nsStat(t, owner) != nsStat(t, user) {
			t.Errorf("the %s namespace is not owned by the container's user namespace", name)
		}
		unix.Close(owner)
	}
}

func nsFD(t *testing.T, path string) int {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func nsStat(t *testing.T, fd int) [2]uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	return [2]uint64{st.Dev, st.Ino}
}
