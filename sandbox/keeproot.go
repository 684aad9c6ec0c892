package sandbox

import (
	"os"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/pidfd"
)

// heldRoot is the container's root mount (and, once init runs, its mount namespace), held by the
// process that created the container until the container's init exits (holdRoot).
//
// Why: the container's root is the mount the setup child attached in the container's mount
// namespace. Unheld, its last reference goes with that namespace, in init's own exit, before the
// kernel reports the exit to the parent: for an overlay root, the teardown of the overlay (its
// layers' private mounts, after an expedited RCU grace period, and its upper tmpfs) made every
// foreground run's wait ≈ 0.5 ms longer. Held here, the mount's last reference is dropped on a
// goroutine of this process once init has exited, while the caller's wait returns and it records
// the exit and removes the container. The descriptor grants this process nothing it did not have
// (it made the mount) and is close-on-exec; a process that ends first (bulwark-runc create)
// drops it then.
//
// Once init runs, its mount namespace is held the same way (mntns): unheld, init's exit still
// unmounted the namespace's other ~30 mounts, after an expedited RCU grace period, before the
// wait saw it. Held, they go when the goroutine closes it, beside Delete's cgroup removal.
type heldRoot struct {
	fd    int
	mntns int
}

// holdRoot duplicates root, the detached root mount about to be donated to the setup child; a
// failed duplicate holds nothing (the root then goes with the namespace, as before).
func holdRoot(root int) heldRoot {
	fd, err := unix.FcntlInt(uintptr(root), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return heldRoot{fd: -1, mntns: -1}
	}
	return heldRoot{fd: fd, mntns: -1}
}

// drop releases the root (and the mount namespace, if held) now: a create that failed, or init
// gone.
func (h heldRoot) drop() {
	if h.mntns >= 0 {
		unix.Close(h.mntns)
	}
	if h.fd >= 0 {
		unix.Close(h.fd)
	}
}

// pidfdGetMntNamespace is PIDFD_GET_MNT_NAMESPACE (linux/pidfd.h, _IO(0xFF, 3), Linux 6.11),
// which x/sys does not name yet: a descriptor of the mount namespace of the process a pidfd
// names.
const pidfdGetMntNamespace = 0xFF03

// untilExit releases the root, and init's mount namespace, once init (pid, a child of this
// process, so not reaped yet: the pid is still init's) has exited. Without a pidfd they are
// released now; a kernel without PIDFD_GET_MNT_NAMESPACE holds the root alone.
func (h heldRoot) untilExit(pid int) {
	if h.fd < 0 {
		return
	}
	pfd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		h.drop()
		return
	}
	if ns, err := unix.IoctlRetInt(pfd, pidfdGetMntNamespace); err == nil {
		h.mntns = ns // the kernel opens it close-on-exec (open_namespace)
	}
	initPidfd := os.NewFile(uintptr(pfd), "pidfd")
	go func() {
		defer h.drop()
		defer initPidfd.Close()
		pidfd.WaitExit(initPidfd) // in the runtime's poller: no thread waits for the exit
	}()
}
