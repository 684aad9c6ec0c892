package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/sandbox/internal/cgroups"
	"bulwark.dev/bulwark/sandbox/internal/idmap"
	"bulwark.dev/bulwark/sandbox/internal/nsenter"
)

// initProc is a container's init as its creator holds it.
type initProc struct {
	pid int
	// cmd is init itself; nil when the setup child forked init (a pod container, see startInit).
	cmd *exec.Cmd
}

// kill kills and reaps init.
func (p initProc) kill() {
	unix.Kill(p.pid, unix.SIGKILL)
	if p.cmd != nil {
		p.cmd.Wait()
		return
	}
	reap(p.pid)
}

// has reports whether the container joins an existing namespace of type t.
func (j *joined) has(t specs.LinuxNamespaceType) bool {
	if j == nil {
		return false
	}
	_, ok := j.fds[t]
	return ok
}

// podOf is the pod sandbox whose namespaces the container joins, or nil.
func (j *joined) podOf() *stateFile {
	if j == nil {
		return nil
	}
	return j.pod
}

// startInit starts the setup child that becomes the container's init, in new namespaces, or in
// the ones the floor let it join (join): the network, ipc and uts namespaces are joined on the
// thread that forks it (setns as host root: a CNI caller's network namespace belongs to the
// host's user namespace, which the container's user namespace cannot enter), the user namespace
// of a pod's sandbox by nsenter's constructor, which then creates the rest inside it. With a
// joined network namespace, sysfs is made in it here too (a user namespace that does not own
// the network namespace cannot mount sysfs): the returned descriptor, or -1.
func (r *Runtime) startInit(stdio IO, terminal bool, rng idmap.Range, cg cgroups.Manager, join *joined) (*channel, initProc, int, error) {
	var fds map[specs.LinuxNamespaceType]int
	if join != nil {
		fds = join.fds
	}
	sysfs := -1
	var onThread func() error
	if len(fds) > 0 {
		onThread = func() error {
			for _, t := range []specs.LinuxNamespaceType{specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace} {
				fd, ok := fds[t]
				if !ok {
					continue
				}
				if err := unix.Setns(fd, nsFlags[t]); err != nil {
					return fmt.Errorf("join the %s namespace: %w", t, err)
				}
				if t != specs.NetworkNamespace {
					continue
				}
				var err error
				if sysfs, err = detachedSysfs(); err != nil {
					return fmt.Errorf("sysfs of the joined network namespace: %w", err)
				}
			}
			return nil
		}
	}
	create := unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWCGROUP
	for _, t := range []specs.LinuxNamespaceType{specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace} {
		if _, ok := fds[t]; !ok {
			create |= nsFlags[t]
		}
	}
	userns, podUser := fds[specs.UserNamespace]
	if !podUser {
		ch, cmd, err := r.startChild("init", stdio, terminal, &syscall.SysProcAttr{
			Cloneflags:                 uintptr(create | unix.CLONE_NEWUSER),
			UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(rng.UIDBase), Size: int(rng.Size)}},
			GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(rng.GIDBase), Size: int(rng.Size)}},
			GidMappingsEnableSetgroups: true,
			// The runtime's host uid 0 is unmapped in the new namespace: become its root (host id
			// UIDBase) before the exec, or init would run as the overflow uid without capabilities.
			Credential: &syscall.Credential{Uid: 0, Gid: 0},
			Setsid:     true,
		}, cg, onThread, nil)
		if err != nil {
			closeAll([]int{sysfs})
			return nil, initProc{}, -1, err
		}
		return ch, initProc{pid: cmd.Process.Pid, cmd: cmd}, sysfs, nil
	}
	syncR, syncW, err := os.Pipe()
	if err != nil {
		return nil, initProc{}, -1, fmt.Errorf("nsenter pipe: %w", err)
	}
	defer syncR.Close()
	ufd, err := unix.FcntlInt(uintptr(userns), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		syncW.Close()
		return nil, initProc{}, -1, fmt.Errorf("pod user namespace: %w", err)
	}
	user := os.NewFile(uintptr(ufd), "pod-userns")
	defer user.Close()
	ch, cmd, err := r.startChild("init", stdio, terminal, &syscall.SysProcAttr{Setsid: true}, cg, onThread,
		[]string{nsenter.EnvJoin + "=" + strconv.Itoa(create&^unix.CLONE_NEWUSER)}, syncW, user)
	syncW.Close()
	if err != nil {
		closeAll([]int{sysfs})
		return nil, initProc{}, -1, err
	}
	pid, err := nsenter.ReadReport(syncR)
	cmd.Wait()
	if err != nil {
		ch.close()
		closeAll([]int{sysfs})
		return nil, initProc{}, -1, fmt.Errorf("start init in pod sandbox %s's user namespace: %w", join.pod.ID, err)
	}
	return ch, initProc{pid: pid}, sysfs, nil
}

// detachedSysfs makes a read-only sysfs of the calling thread's network namespace, detached.
func detachedSysfs() (int, error) {
	fs, err := unix.Fsopen("sysfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsopen: %w", err)
	}
	defer unix.Close(fs)
	if err := unix.FsconfigCreate(fs); err != nil {
		return -1, fmt.Errorf("fsconfig: %w", err)
	}
	fd, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsmount: %w", err)
	}
	return fd, nil
}
