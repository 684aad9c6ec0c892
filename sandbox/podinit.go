package sandbox

import (
	"fmt"
	"os"
	"strconv"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/sandbox/internal/cgroups"
	"bulwark.dev/bulwark/sandbox/internal/nsenter"
	"bulwark.dev/bulwark/sandbox/setup"
)

// initProc is a container's init as its creator holds it: a child the setup child forked (see
// startInit), reaped by pid.
type initProc struct {
	pid int
}

// kill kills and reaps init.
func (p initProc) kill() {
	unix.Kill(p.pid, unix.SIGKILL)
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
// the ones the floor let it join (join): the network, ipc and uts namespaces — its pod's, or its
// own made apart (made: see ownNS) — are joined on the thread that forks it (setns as host root:
// a CNI caller's network namespace belongs to the host's user namespace, which the container's
// user namespace cannot enter), the user namespace (a pod's sandbox's, or its own, mapped) by
// nsenter's constructor, which then creates the rest inside it and forks init. With a joined
// network namespace, sysfs is made in it here too (a user namespace that does not own the
// network namespace cannot mount sysfs): the returned descriptor, or -1.
func (r *Runtime) startInit(stdio IO, terminal bool, cg cgroups.Manager, join *joined, made map[specs.LinuxNamespaceType]int) (*setup.Channel, initProc, int, error) {
	var fds map[specs.LinuxNamespaceType]int
	if join != nil {
		fds = join.fds
	}
	// The container's own user namespace is made (and mapped) apart, then joined like a pod's:
	// os/exec would otherwise fork the whole runtime to clone one (see internal/userns).
	usernsFD, podUser := fds[specs.UserNamespace]
	if !podUser {
		usernsFD = made[specs.UserNamespace]
	}
	sysfs := -1
	create := unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWCGROUP
	type entry struct {
		t      specs.LinuxNamespaceType
		fd     int
		joined bool // the pod's or the CNI caller's, not made for the container
	}
	var enter []entry
	for _, t := range apartTypes {
		if fd, ok := fds[t]; ok {
			enter = append(enter, entry{t, fd, true})
		} else if fd, ok := made[t]; ok {
			enter = append(enter, entry{t, fd, false})
		} else {
			create |= nsFlags[t]
		}
	}
	var onThread func() error
	if len(enter) > 0 {
		onThread = func() error {
			for _, e := range enter {
				if err := unix.Setns(e.fd, nsFlags[e.t]); err != nil {
					return fmt.Errorf("join the %s namespace: %w", e.t, err)
				}
				if e.t != specs.NetworkNamespace || !e.joined {
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
	syncR, syncW, err := os.Pipe()
	if err != nil {
		return nil, initProc{}, -1, fmt.Errorf("nsenter pipe: %w", err)
	}
	defer syncR.Close()
	ufd, err := unix.FcntlInt(uintptr(usernsFD), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		syncW.Close()
		return nil, initProc{}, -1, fmt.Errorf("user namespace: %w", err)
	}
	user := os.NewFile(uintptr(ufd), "userns")
	defer user.Close()
	ch, cmd, err := r.startChild("init", stdio, terminal, &syscall.SysProcAttr{Setsid: true}, cg, onThread,
		[]string{nsenter.EnvJoin + "=" + strconv.Itoa(create&^unix.CLONE_NEWUSER)}, syncW, user)
	syncW.Close()
	if err != nil {
		setup.CloseAll([]int{sysfs})
		return nil, initProc{}, -1, err
	}
	pid, err := nsenter.ReadReport(syncR)
	if err == nil {
		// It exits right after its report: collect it without waiting here.
		go cmd.Wait()
	} else {
		cmd.Wait()
		ch.Close()
		setup.CloseAll([]int{sysfs})
		if podUser {
			return nil, initProc{}, -1, fmt.Errorf("start init in pod sandbox %s's user namespace: %w", join.pod.ID, err)
		}
		return nil, initProc{}, -1, fmt.Errorf("start init in its user namespace: %w", err)
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
