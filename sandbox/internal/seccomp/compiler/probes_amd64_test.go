package compiler

import "golang.org/x/sys/unix"

// probe is one system call made under the filter; want is the errno the default profile must
// produce (0: the call succeeded, other values: the kernel's own answer once the filter let it pass).
type probe struct {
	name string
	want unix.Errno
	call func() unix.Errno
}

func sys(nr uintptr, a ...uintptr) unix.Errno {
	var v [6]uintptr
	copy(v[:], a)
	_, _, e := unix.Syscall6(nr, v[0], v[1], v[2], v[3], v[4], v[5])
	return e
}

// sock makes a socket and closes it on success.
func sock(family, typ, proto uintptr) unix.Errno {
	fd, _, e := unix.Syscall(unix.SYS_SOCKET, family, typ, proto)
	if e == 0 {
		unix.Close(int(fd))
	}
	return e
}

const (
	hiBit      = uintptr(1) << 32
	ipprotoMPT = 262
	tiocsti    = 0x5412
	tioclinux  = 0x541c
	afVsock    = 40
	badFD      = ^uintptr(0) // -1
)

var probes = []probe{
	{"getppid", 0, func() unix.Errno { return sys(unix.SYS_GETPPID) }},
	{"open_by_handle_at", unix.EPERM, func() unix.Errno { return sys(unix.SYS_OPEN_BY_HANDLE_AT, badFD, 0, 0) }},
	{"name_to_handle_at", unix.EPERM, func() unix.Errno { return sys(unix.SYS_NAME_TO_HANDLE_AT, badFD, 0, 0, 0, 0) }},
	{"clone3", unix.ENOSYS, func() unix.Errno { return sys(unix.SYS_CLONE3, 0, 0) }},
	{"unshare(NEWUSER)", unix.EPERM, func() unix.Errno { return sys(unix.SYS_UNSHARE, unix.CLONE_NEWUSER) }},
	{"unshare(NEWNS|NEWNET)", unix.EPERM, func() unix.Errno { return sys(unix.SYS_UNSHARE, unix.CLONE_NEWNS|unix.CLONE_NEWNET) }},
	{"unshare(NEWTIME)", unix.EPERM, func() unix.Errno { return sys(unix.SYS_UNSHARE, unix.CLONE_NEWTIME) }},
	{"unshare(SYSVSEM)", 0, func() unix.Errno { return sys(unix.SYS_UNSHARE, unix.CLONE_SYSVSEM) }},
	// CLONE_THREAD without CLONE_SIGHAND is EINVAL in the kernel, so none of these can fork: the
	// errno shows whether the filter (EPERM) or the kernel (EINVAL) answered.
	{"clone(NEWUSER|THREAD)", unix.EPERM, func() unix.Errno { return sys(unix.SYS_CLONE, unix.CLONE_NEWUSER|unix.CLONE_THREAD) }},
	{"clone(NEWNET|NEWNS|THREAD)", unix.EPERM, func() unix.Errno { return sys(unix.SYS_CLONE, unix.CLONE_NEWNET|unix.CLONE_NEWNS|unix.CLONE_THREAD) }},
	{"clone(THREAD)", unix.EINVAL, func() unix.Errno { return sys(unix.SYS_CLONE, unix.CLONE_THREAD) }},
	{"socket(NETLINK, AUDIT)", unix.EPERM, func() unix.Errno { return sock(unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_AUDIT) }},
	{"socket(NETLINK, KOBJECT_UEVENT)", unix.EPERM, func() unix.Errno { return sock(unix.AF_NETLINK, unix.SOCK_DGRAM, unix.NETLINK_KOBJECT_UEVENT) }},
	{"socket(NETLINK, ROUTE)", 0, func() unix.Errno { return sock(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE) }},
	{"socket(NETLINK|hi, AUDIT)", unix.ENOSYS, func() unix.Errno { return sock(unix.AF_NETLINK|hiBit, unix.SOCK_RAW, unix.NETLINK_AUDIT) }},
	{"socket(INET, STREAM, MPTCP)", unix.EPERM, func() unix.Errno { return sock(unix.AF_INET, unix.SOCK_STREAM, ipprotoMPT) }},
	{"socket(INET6, STREAM|flags, MPTCP)", unix.EPERM, func() unix.Errno {
		return sock(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, ipprotoMPT)
	}},
	{"socket(INET, STREAM, MPTCP|hi)", unix.EPERM, func() unix.Errno { return sock(unix.AF_INET, unix.SOCK_STREAM, ipprotoMPT|hiBit) }},
	{"socket(INET, STREAM|CLOEXEC, 0)", 0, func() unix.Errno { return sock(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0) }},
	{"socket(INET6, STREAM, TCP)", 0, func() unix.Errno { return sock(unix.AF_INET6, unix.SOCK_STREAM, unix.IPPROTO_TCP) }},
	{"socket(INET6, DGRAM|NONBLOCK, UDP)", 0, func() unix.Errno { return sock(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK, unix.IPPROTO_UDP) }},
	{"socket(INET, RAW, ICMP)", unix.EPERM, func() unix.Errno { return sock(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP) }},
	{"socket(INET6, RAW|CLOEXEC, RAW)", unix.EPERM, func() unix.Errno { return sock(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW) }},
	{"socket(PACKET, RAW)", unix.EPERM, func() unix.Errno { return sock(unix.AF_PACKET, unix.SOCK_RAW, 0x0300) }},
	{"socket(UNIX, STREAM)", 0, func() unix.Errno { return sock(unix.AF_UNIX, unix.SOCK_STREAM, 0) }},
	{"socket(VSOCK)", unix.ENOSYS, func() unix.Errno { return sock(afVsock, unix.SOCK_STREAM, 0) }},
	{"ioctl(TIOCSTI)", unix.EPERM, func() unix.Errno { return sys(unix.SYS_IOCTL, badFD, tiocsti, 0) }},
	// CVE-2019-10063: the kernel truncates the request to 32 bits, so high bits must not help.
	{"ioctl(TIOCSTI|hi)", unix.EPERM, func() unix.Errno { return sys(unix.SYS_IOCTL, badFD, tiocsti|hiBit, 0) }},
	{"ioctl(TIOCLINUX)", unix.EPERM, func() unix.Errno { return sys(unix.SYS_IOCTL, badFD, tioclinux, 0) }},
	{"ioctl(TCGETS)", unix.EBADF, func() unix.Errno { return sys(unix.SYS_IOCTL, badFD, unix.TCGETS, 0) }},
	{"ioctl(FIONREAD)", unix.EBADF, func() unix.Errno { return sys(unix.SYS_IOCTL, badFD, 0x541b, 0) }}, // FIONREAD
	{"ioctl(0xc0045401)", unix.EBADF, func() unix.Errno { return sys(unix.SYS_IOCTL, badFD, 0xc0045401, 0) }},
	{"syscall 1000", unix.ENOSYS, func() unix.Errno { return sys(1000) }},
	{"get_mempolicy (unlisted)", unix.ENOSYS, func() unix.Errno { return sys(unix.SYS_GET_MEMPOLICY, 0, 0, 0, 0, 0) }},
	{"personality(query)", 0, func() unix.Errno { return sys(unix.SYS_PERSONALITY, 0xffffffff) }},
	{"personality(PER_LINUX)", 0, func() unix.Errno { return sys(unix.SYS_PERSONALITY, 0) }},
	{"personality(PER_LINUX32)", unix.EPERM, func() unix.Errno { return sys(unix.SYS_PERSONALITY, 0x0008) }},
	{"personality(ADDR_NO_RANDOMIZE)", unix.EPERM, func() unix.Errno { return sys(unix.SYS_PERSONALITY, 0x0040000) }},
	{"personality(hi)", unix.EPERM, func() unix.Errno { return sys(unix.SYS_PERSONALITY, hiBit) }},
	{"io_uring_setup", unix.ENOSYS, func() unix.Errno { return sys(unix.SYS_IO_URING_SETUP, 1, 0) }},
	{"bpf", unix.EPERM, func() unix.Errno { return sys(unix.SYS_BPF, 0, 0, 0) }},
	{"keyctl", unix.EPERM, func() unix.Errno { return sys(unix.SYS_KEYCTL, 0) }},
	{"add_key", unix.EPERM, func() unix.Errno { return sys(unix.SYS_ADD_KEY, 0, 0, 0, 0, 0) }},
	{"userfaultfd", unix.EPERM, func() unix.Errno { return sys(unix.SYS_USERFAULTFD, 0) }},
	{"perf_event_open", unix.EPERM, func() unix.Errno { return sys(unix.SYS_PERF_EVENT_OPEN, 0, 0, 0, badFD, 0) }},
	{"ptrace(PEEKDATA, 1)", unix.EPERM, func() unix.Errno { return sys(unix.SYS_PTRACE, unix.PTRACE_PEEKDATA, 1, 0, 0) }},
	{"process_vm_readv", unix.EPERM, func() unix.Errno { return sys(unix.SYS_PROCESS_VM_READV, 1, 0, 0, 0, 0, 0) }},
	{"setns", unix.EPERM, func() unix.Errno { return sys(unix.SYS_SETNS, badFD, 0) }},
	{"mount", unix.EPERM, func() unix.Errno { return sys(unix.SYS_MOUNT, 0, 0, 0, 0, 0) }},
	{"umount2", unix.EPERM, func() unix.Errno { return sys(unix.SYS_UMOUNT2, 0, 0) }},
	{"pivot_root", unix.EPERM, func() unix.Errno { return sys(unix.SYS_PIVOT_ROOT, 0, 0) }},
	{"fsopen", unix.EPERM, func() unix.Errno { return sys(unix.SYS_FSOPEN, 0, 0) }},
	{"open_tree", unix.EPERM, func() unix.Errno { return sys(unix.SYS_OPEN_TREE, badFD, 0, 0) }},
	{"move_mount", unix.EPERM, func() unix.Errno { return sys(unix.SYS_MOVE_MOUNT, badFD, 0, badFD, 0, 0) }},
	{"mount_setattr", unix.EPERM, func() unix.Errno { return sys(unix.SYS_MOUNT_SETATTR, badFD, 0, 0, 0, 0) }},
	{"kexec_load", unix.EPERM, func() unix.Errno { return sys(unix.SYS_KEXEC_LOAD, 0, 0, 0, 0) }},
	{"init_module", unix.EPERM, func() unix.Errno { return sys(unix.SYS_INIT_MODULE, 0, 0, 0) }},
	{"delete_module", unix.EPERM, func() unix.Errno { return sys(unix.SYS_DELETE_MODULE, 0, 0) }},
	{"reboot", unix.EPERM, func() unix.Errno { return sys(unix.SYS_REBOOT, 0, 0, 0, 0) }},
	{"swapoff", unix.EPERM, func() unix.Errno { return sys(unix.SYS_SWAPOFF, 0) }},
	{"acct", unix.EPERM, func() unix.Errno { return sys(unix.SYS_ACCT, 0) }},
	{"iopl", unix.EPERM, func() unix.Errno { return sys(unix.SYS_IOPL, 0) }},
	{"ioperm", unix.EPERM, func() unix.Errno { return sys(unix.SYS_IOPERM, 0, 0, 0) }},
}

// hostEffect names probes that would change host state if no filter stopped them (acct(NULL)
// turns process accounting off, kexec_load with no segments unloads a staged kernel); the
// unfiltered baseline run skips them.
var hostEffect = map[string]bool{"acct": true, "kexec_load": true}

func runProbes(baseline bool) map[string]int {
	out := map[string]int{}
	for _, pr := range probes {
		if baseline && hostEffect[pr.name] {
			continue
		}
		out[pr.name] = int(pr.call())
	}
	return out
}
