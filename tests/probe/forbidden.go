package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Every attempt below is chosen so that it is harmless even where it is NOT blocked: invalid
// arguments the kernel rejects only after its permission checks (an unknown filesystem type, a
// wrong reboot magic, a too-small clone3 size), or state changes confined to a thread that exits.
// So the errno tells which layer answered: seccomp (EPERM/ENOSYS before any argument check), a
// missing capability (EPERM), or the kernel's argument check (EINVAL/ENODEV …) when nothing did.

// forbidden runs every forbidden operation on a locked OS thread that is discarded afterwards, so
// per-thread namespace changes cannot outlive the probe's section.
func forbidden() map[string]string {
	if inInitialUserNS() {
		return map[string]string{"refused": "not in a user namespace: forbidden operations only run in a sandbox"}
	}
	ch := make(chan map[string]string)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		ch <- forbiddenOps()
	}()
	return <-ch
}

func forbiddenOps() map[string]string {
	m := map[string]string{}
	set := func(name string, err error) { m[name] = errName(err) }
	raw := func(name string, trap uintptr, a ...uintptr) {
		var args [6]uintptr
		copy(args[:], a)
		r, _, e := unix.Syscall6(trap, args[0], args[1], args[2], args[3], args[4], args[5])
		if e != 0 {
			m[name] = errName(e)
			return
		}
		m[name] = ""
		if strings.HasSuffix(name, "_fd") || name == "perf_event_open" || name == "bpf" || name == "userfaultfd" || name == "fsopen" || name == "io_uring_setup" {
			unix.Close(int(r))
		}
	}
	str := func(s string) uintptr { p, _ := unix.BytePtrFromString(s); return uintptr(unsafe.Pointer(p)) }

	set("mount", unix.Mount("none", "/", "bulwark-probe-nofs", 0, ""))
	set("umount2", unix.Unmount("/bulwark-probe-nonexistent", unix.MNT_DETACH))
	raw("pivot_root", unix.SYS_PIVOT_ROOT, str("/bulwark-probe-nonexistent"), str("/bulwark-probe-nonexistent"))
	raw("fsopen", unix.SYS_FSOPEN, str("bulwark-probe-nofs"), 0)
	cwdFD := unix.AT_FDCWD
	raw("open_tree", unix.SYS_OPEN_TREE, uintptr(cwdFD), str("/bulwark-probe-nonexistent"), unix.OPEN_TREE_CLONE)
	// A multi-threaded process gets EINVAL from the kernel for CLONE_NEWUSER, so EPERM here can
	// only come from seccomp.
	set("unshare_user", unix.Unshare(unix.CLONE_NEWUSER))
	set("unshare_net", unix.Unshare(unix.CLONE_NEWNET))
	set("unshare_cgroup", unix.Unshare(unix.CLONE_NEWCGROUP))
	set("unshare_uts", unix.Unshare(unix.CLONE_NEWUTS))
	set("unshare_ipc", unix.Unshare(unix.CLONE_NEWIPC))
	set("unshare_pid", unix.Unshare(unix.CLONE_NEWPID))
	// clone with namespace flags and a NULL stack: if it were allowed the kernel would fail on
	// nothing and create a child, so use CLONE_NEWUSER|CLONE_THREAD, an invalid combination (EINVAL).
	raw("clone_newuser", unix.SYS_CLONE, unix.CLONE_NEWUSER|unix.CLONE_THREAD|unix.CLONE_SIGHAND|unix.CLONE_VM, 0, 0, 0, 0)
	// clone3 with a size below CLONE_ARGS_SIZE_VER0: EINVAL if the call reaches the kernel.
	var cl [16]uint64
	cl[0] = unix.CLONE_NEWUSER
	raw("clone3", unix.SYS_CLONE3, uintptr(unsafe.Pointer(&cl[0])), 8)

	if fd, err := unix.Open("/proc/self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
		set("setns", unix.Setns(fd, unix.CLONE_NEWNET))
		unix.Close(fd)
	} else {
		m["setns"] = "open: " + errName(err)
	}

	// Shocker's two syscalls.
	if fd, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
		_, _, err := unix.NameToHandleAt(fd, ".", 0)
		set("name_to_handle_at", err)
		h := unix.NewFileHandle(1, make([]byte, 8))
		hfd, err := unix.OpenByHandleAt(fd, h, unix.O_RDONLY)
		if err == nil {
			unix.Close(hfd)
		}
		set("open_by_handle_at", err)
		unix.Close(fd)
	}

	sessionKeyring, processKeyring := unix.KEY_SPEC_SESSION_KEYRING, unix.KEY_SPEC_PROCESS_KEYRING
	raw("keyctl", unix.SYS_KEYCTL, unix.KEYCTL_GET_KEYRING_ID, uintptr(sessionKeyring), 0)
	raw("add_key", unix.SYS_ADD_KEY, str("bulwark-probe-notype"), str("x"), 0, 0, uintptr(processKeyring))
	raw("request_key", unix.SYS_REQUEST_KEY, str("bulwark-probe-notype"), str("x"), 0, 0)
	var bpfAttr [128]byte
	raw("bpf", unix.SYS_BPF, unix.BPF_PROG_LOAD, uintptr(unsafe.Pointer(&bpfAttr[0])), 0)
	raw("userfaultfd", unix.SYS_USERFAULTFD, unix.O_CLOEXEC)
	// A system call newer than the floor's allowlist (Linux 6.8): the kernel would answer EFAULT
	// for the NULL request; the floor's default action must answer ENOSYS, as an older kernel would.
	raw("statmount_newer", unix.SYS_STATMOUNT, 0, 0, 0, 0)
	var uringParams [120]byte
	raw("io_uring_setup", unix.SYS_IO_URING_SETUP, 0, uintptr(unsafe.Pointer(&uringParams[0]))) // 0 entries: EINVAL if allowed
	pe := unix.PerfEventAttr{Type: unix.PERF_TYPE_SOFTWARE, Config: unix.PERF_COUNT_SW_CPU_CLOCK, Size: uint32(unsafe.Sizeof(unix.PerfEventAttr{}))}
	pe.Bits = unix.PerfBitDisabled
	raw("perf_event_open", unix.SYS_PERF_EVENT_OPEN, uintptr(unsafe.Pointer(&pe)), 0, ^uintptr(0), ^uintptr(0), unix.PERF_FLAG_FD_CLOEXEC)
	// ptrace of pid 1, the container's init, or of a child of ours when the probe is pid 1 (the
	// kernel refuses attaching to oneself whatever seccomp says). No PTRACE_TRACEME: if it were
	// ever allowed, the parent would become a tracer that never resumes the probe.
	target := 1
	var child *os.Process
	if os.Getpid() == 1 {
		if p, err := os.StartProcess("/bin/sleep", []string{"sleep", "10"}, &os.ProcAttr{}); err == nil {
			child, target = p, p.Pid
		}
	}
	raw("ptrace_attach", unix.SYS_PTRACE, unix.PTRACE_ATTACH, uintptr(target))
	raw("process_vm_readv", unix.SYS_PROCESS_VM_READV, uintptr(target), 0, 0, 0, 0, 0)
	if child != nil {
		child.Kill()
		child.Wait()
	}
	// Wrong magic: the kernel checks CAP_SYS_BOOT first (EPERM) and the magic after (EINVAL).
	raw("reboot", unix.SYS_REBOOT, 0, 0, 0, 0)
	raw("kexec_load", unix.SYS_KEXEC_LOAD, 0, 0, 0, 0xffff0000)
	raw("kexec_file_load", unix.SYS_KEXEC_FILE_LOAD, ^uintptr(0), ^uintptr(0), 0, 0, 0xffffffff)
	raw("init_module", unix.SYS_INIT_MODULE, 0, 0, str(""))
	raw("finit_module", unix.SYS_FINIT_MODULE, ^uintptr(0), str(""), 0)
	raw("delete_module", unix.SYS_DELETE_MODULE, str("bulwark_probe_nomodule"), 0)
	raw("acct", unix.SYS_ACCT, 0)
	raw("swapoff", unix.SYS_SWAPOFF, str("/bulwark-probe-nonexistent"))
	raw("iopl", unix.SYS_IOPL, 3)
	raw("ioperm", unix.SYS_IOPERM, 0x80, 1, 1)
	raw("settimeofday", unix.SYS_SETTIMEOFDAY, 0, 0)
	raw("syslog", unix.SYS_SYSLOG, 3, 0, 0) // SYSLOG_ACTION_READ_ALL with a NULL buffer: EINVAL if allowed
	raw("personality_linux32", unix.SYS_PERSONALITY, 0x0008)
	set("chroot", unix.Chroot("/"))
	set("mknod_char", unix.Mknod(fmt.Sprintf("/tmp/.bulwark-probe-null-%d", os.Getpid()), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3))))
	unix.Unlink(fmt.Sprintf("/tmp/.bulwark-probe-null-%d", os.Getpid()))

	sock := func(name string, domain, typ, proto int) {
		fd, err := unix.Socket(domain, typ|unix.SOCK_CLOEXEC, proto)
		if err == nil {
			unix.Close(fd)
		}
		set(name, err)
	}
	sock("socket_netlink_audit", unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_AUDIT)
	sock("socket_netlink_route", unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_ROUTE)
	sock("socket_raw_icmp", unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
	sock("socket_packet", unix.AF_PACKET, unix.SOCK_RAW, 0)
	sock("socket_mptcp", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_MPTCP)
	sock("socket_tcp", unix.AF_INET, unix.SOCK_STREAM, 0)

	// TIOCSTI/TIOCLINUX on the master of a fresh pty: the sandbox's own terminal, nothing else.
	if fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0); err == nil {
		c := byte(' ')
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCSTI, uintptr(unsafe.Pointer(&c)))
		m["ioctl_tiocsti"] = errName(errnoOrNil(e))
		sub := byte(0xff) // an unknown TIOCLINUX subcode: EINVAL if the call reaches the kernel
		_, _, e = unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCLINUX, uintptr(unsafe.Pointer(&sub)))
		m["ioctl_tioclinux"] = errName(errnoOrNil(e))
		unix.Close(fd)
	} else {
		m["ioctl_tiocsti"] = "open /dev/ptmx: " + errName(err)
	}

	cgroupEscape(m)
	return m
}

// cgroupEscape covers CVE-2022-0492: a process that can mount a cgroup v1 hierarchy (after
// unsharing user and cgroup namespaces) or reach a writable release_agent gets the host to run a
// program of its choice as root when the cgroup empties.
func cgroupEscape(m map[string]string) {
	set := func(name string, err error) { m[name] = errName(err) }
	set("unshare_user_cgroup_mnt", unix.Unshare(unix.CLONE_NEWUSER|unix.CLONE_NEWCGROUP|unix.CLONE_NEWNS))
	dir := fmt.Sprintf("/tmp/.bulwark-probe-cg-%d", os.Getpid())
	if err := unix.Mkdir(dir, 0o700); err != nil {
		m["mount_cgroup_v1"] = "mkdir: " + errName(err)
	} else {
		err := unix.Mount("cgroup", dir, "cgroup", 0, "rdma")
		set("mount_cgroup_v1", err)
		if err == nil {
			unix.Unmount(dir, unix.MNT_DETACH)
		}
		unix.Rmdir(dir)
	}
	ms, _ := mounts()
	n := 0
	for _, mt := range ms {
		if mt.FSType != "cgroup" {
			continue
		}
		p := mt.Mountpoint + "/release_agent"
		if _, err := os.Stat(p); err != nil {
			continue
		}
		m["release_agent:"+p] = openWrite(p)
		n++
	}
	m["release_agent_visible"] = fmt.Sprint(n)
}

func errnoOrNil(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// inInitialUserNS reports whether this process runs with the host's identity mapping; the probe
// refuses its intrusive sections there so it can never disturb the host it is developed on.
func inInitialUserNS() bool {
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return true
	}
	f := strings.Fields(string(b))
	return len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295"
}

// abi runs `probe abi-child` and reports how its i386 system call ended.
func abi() *string {
	self, err := os.Executable()
	if err != nil {
		s := "executable: " + errName(err)
		return &s
	}
	var out strings.Builder
	cmd := exec.Command(self, "abi-child")
	cmd.Stdout = &out
	err = cmd.Run()
	res := out.String()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res = unix.SignalName(ws.Signal())
		} else {
			res = "exit: " + ee.Error()
		}
	} else if err != nil {
		res = "run: " + errName(err)
	}
	return &res
}
