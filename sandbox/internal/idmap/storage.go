package idmap

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// StorageBase is the first host id of the storage range: volumes and writable binds keep their
// files on disk as StorageBase+N for container id N, whichever tenant range the container that
// wrote them had (ranges are released and handed out again; data outlives them). An idmapped
// mount shifts StorageBase+N to the running container's id N, so container root owns what it
// wrote without any chown, and the host sees nothing of it owned by host root or by a range a
// tenant may get later. The range sits just below the tenants' (firstBase) and is never handed
// out; it must not overlap the host's subordinate ids (StorageUserns checks).
const StorageBase = firstBase - RangeSize

// StorageUserns returns a user namespace descriptor mapping the storage range onto the host ids
// uid and gid (a container's base ids): the idmap of its volume and writable bind mounts. The
// namespace is made by a child stopped at its execve (ptrace), opened, then killed: nothing of
// it runs. The caller closes the descriptor.
func StorageUserns(uid, gid uint32) (int, error) {
	return storageUserns(uid, gid, "/etc/subuid", "/etc/subgid")
}

func storageUserns(uid, gid uint32, subUID, subGID string) (int, error) {
	for _, f := range []string{subUID, subGID} {
		sub, err := readSubIDs(f)
		if err != nil {
			return -1, err
		}
		for _, s := range sub {
			if s.overlaps(span(StorageBase, RangeSize)) {
				return -1, fmt.Errorf("the storage id range %d-%d overlaps a subordinate id range in %s", StorageBase, StorageBase+RangeSize-1, f)
			}
		}
	}
	// A ptrace-stopped child reports to its tracer thread: fork, open and reap on one thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{"bulwark-storage-userns"}
	cmd.Env = []string{}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: int(StorageBase), HostID: int(uid), Size: int(RangeSize)}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: int(StorageBase), HostID: int(gid), Size: int(RangeSize)}},
		Ptrace:      true,
		Pdeathsig:   syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("storage user namespace: %w", err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	fd, err := unix.Open("/proc/"+strconv.Itoa(cmd.Process.Pid)+"/ns/user", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open storage user namespace: %w", os.NewSyscallError("open", err))
	}
	return fd, nil
}
