// Joins every namespace of a running container before the Go runtime starts. setns(CLONE_NEWUSER)
// needs a single-threaded process, which a Go program never is once its runtime runs, so this
// runs as an ELF constructor (as runc's nsexec does), and only when the runtime set the marker
// variable for an Exec. It then clones a child, because joining a pid namespace only applies to
// children: the child returns into the Go runtime (already inside every namespace). CLONE_PARENT
// makes the child a sibling of this process — a direct child of the runtime — so that, as with
// runc, the exec'd process is reaped by the runtime or, once a detached runtime exits, by the
// caller's subreaper (containerd's shim waits for exactly that pid). This process reports the
// child's host pid and exits.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

// Descriptor 5 in the joined process's table (see fdNsenter in sandbox/create.go).
#define SYNC_FD 5

// report is what the runtime reads from SYNC_FD: pid > 0 on success, else the failed step and
// errno.
struct report {
	int32_t pid;
	int32_t step;
	int32_t err;
};

static void fail(int step) {
	struct report r = {0, step, errno};
	if (write(SYNC_FD, &r, sizeof r) < 0) {
		// Nothing more to do: the runtime sees EOF and the exit status.
	}
	_exit(1);
}

// leaksClosed is set once closeLeaked has closed every descriptor above the runtime's: the Go side
// then has none of the caller's left to look for (see bulwark_leaks_closed).
static int leaksClosed;

// closeLeaked closes every descriptor from first on before the fork. The runtime passes nothing
// above the ones named here, and every descriptor that survived the exec arrived without
// close-on-exec: a leak from the runtime's caller, which the Go side closes anyway
// (closeInherited) unless this did. Closing it here keeps it out of the fork's descriptor table,
// whose size the kernel takes from the highest open descriptor: a caller's leaked descriptor 251
// gave every container's init a 256-slot table (2 kB of kernel memory, kmalloc-cg-2k) for its
// whole life instead of the 64 slots embedded in its files_struct (issue 14). A kernel without
// close_range (before 5.9), or a caller's seccomp filter that refuses it, leaves them to the Go
// side.
static void closeLeaked(unsigned int first) {
	if (syscall(SYS_close_range, first, ~0U, 0) == 0)
		leaksClosed = 1;
}

int bulwark_leaks_closed(void) { return leaksClosed; }

__attribute__((constructor)) static void bulwark_nsenter(void) {
	const char *pid = getenv("_BULWARK_NSENTER");
	if (pid == NULL || *pid == '\0')
		return;
	// CVE-2019-5736: this process is about to sit inside the container's namespaces.
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		fail(1);
	// Network first, as host root: a pod's network namespace may be the CNI caller's, owned by
	// the host's user namespace, which the container's user namespace grants nothing over. Then
	// user: it grants the capabilities the other joins need. Mount last: it changes how /proc
	// paths resolve, so every descriptor is opened before any join.
	static const struct {
		const char *name;
		int type;
	} ns[] = {
		{"net", CLONE_NEWNET}, {"user", CLONE_NEWUSER},     {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS},
		{"pid", CLONE_NEWPID}, {"cgroup", CLONE_NEWCGROUP}, {"mnt", CLONE_NEWNS},
	};
	enum { N = sizeof ns / sizeof ns[0] };
	int fds[N];
	for (int i = 0; i < N; i++) {
		char path[64];
		snprintf(path, sizeof path, "/proc/%s/ns/%s", pid, ns[i].name);
		fds[i] = open(path, O_RDONLY | O_CLOEXEC);
		if (fds[i] < 0)
			fail(10 + i);
	}
	for (int i = 0; i < N; i++) {
		if (setns(fds[i], ns[i].type) < 0)
			fail(20 + i);
		close(fds[i]);
	}
	// Become the container's root (the runtime's host uid is unmapped in there); the process plan
	// then switches to the workload's user.
	if (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
		fail(30);
	closeLeaked(SYNC_FD + 1);
	// Raw clone without a new stack behaves like fork; glibc keeps no pid cache to invalidate.
	// The child inherits this process's cgroups, which the runtime chose at its birth.
	pid_t child = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, NULL, NULL, NULL, 0);
	if (child < 0)
		fail(31);
	if (child == 0) {
		close(SYNC_FD);
		return;
	}
	struct report r = {child, 0, 0};
	if (write(SYNC_FD, &r, sizeof r) != sizeof r) {
		kill(child, SIGKILL);
		_exit(1);
	}
	_exit(0);
}

// privateProc mounts a procfs of the init's new pid namespace over /proc in its new mount
// namespace, before the Go runtime starts. The runtime and the setup read /proc/self files before
// pivot_root (cgo's stack bounds in maps, the cgroup-aware GOMAXPROCS's cgroup and mountinfo, the
// descriptor table's size in status); on the host's procfs each of them leaves an inode and a
// dentry in the host's caches for as long as this process lives, and it is the container's init
// (issue 14). On a procfs of its own they go with it when pivot_root's old root is detached. The
// mount reaches nothing outside: a mount namespace made in a user namespace gets the host's shared
// mounts as slaves. Best effort, as it only saves memory: where the mount fails, the host's /proc
// answers as before.
static void privateProc(int made) {
	if ((made & (CLONE_NEWNS | CLONE_NEWPID)) != (CLONE_NEWNS | CLONE_NEWPID))
		return;
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
		// The host's /proc stays.
	}
}

// Descriptor 6 of a container's setup child: the user namespace its init starts in.
#define USERNS_FD 6

// Starts a container's init in its user namespace (its pod sandbox's, or one the runtime made and
// mapped for it), before the Go runtime starts (only when the runtime set _BULWARK_NSJOIN, to
// the clone flags of the namespaces to create). The runtime started this process already in the
// network, ipc and uts namespaces it joins — its pod's, or its own, made in its user namespace
// beside the runtime's other work — (set on the thread that forked it), and in the container's
// cgroup; here it joins the user namespace, becomes its root, creates the
// container's own namespaces in it (so the user namespace owns them and the setup can mount)
// and forks the init, which returns into the Go runtime as the setup child. The fork is a sibling of this process (CLONE_PARENT): the runtime
// reaps it. This process reports its host pid on SYNC_FD and exits.
__attribute__((constructor)) static void bulwark_nsjoin(void) {
	const char *flags = getenv("_BULWARK_NSJOIN");
	if (flags == NULL || *flags == '\0')
		return;
	// CVE-2019-5736: this process is about to sit inside the container's namespaces.
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		fail(1);
	if (setns(USERNS_FD, CLONE_NEWUSER) < 0)
		fail(40);
	close(USERNS_FD);
	if (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
		fail(30);
	int made = (int)strtol(flags, NULL, 10);
	if (unshare(made) < 0)
		fail(41);
	closeLeaked(USERNS_FD + 1);
	pid_t child = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, NULL, NULL, NULL, 0);
	if (child < 0)
		fail(31);
	if (child == 0) {
		close(SYNC_FD);
		// Init leads its own session (a terminal becomes its controlling one).
		if (setsid() < 0)
			_exit(1);
		privateProc(made);
		return;
	}
	struct report r = {child, 0, 0};
	if (write(SYNC_FD, &r, sizeof r) != sizeof r) {
		kill(child, SIGKILL);
		_exit(1);
	}
	_exit(0);
}
