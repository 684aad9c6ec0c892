// Raises vm.memfd_noexec to 2 in a container's pid namespace. The sysctl is per pid namespace and
// only takes effect for the writer's own (active) pid namespace; the write needs CAP_SYS_ADMIN in
// the namespace's owning user namespace and, since the /proc/sys file is owned by the host's
// root, a writer whose euid is host root. Container root (an unprivileged host uid) can therefore
// never set it; the runtime can, from a child it forks into the container's pid namespace. That
// child is host root inside the container's pid namespace for the length of one write, before the
// container runs anything of its own, and is not dumpable. This runs as an ELF constructor of the
// re-executed runtime, only when the marker variable is set, and exits with 0 or the errno.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void fail(void) { _exit(errno > 0 && errno < 126 ? errno : 125); }

__attribute__((constructor)) static void bulwark_memfd_noexec(void) {
	const char *pid = getenv("_BULWARK_MEMFD_NOEXEC");
	if (pid == NULL || *pid == '\0')
		return;
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		fail();
	// Descriptor 3 is the runtime binary this process was executed from: nothing goes along.
	if (syscall(SYS_close_range, 3, ~0U, 0) < 0)
		fail();
	char path[64];
	snprintf(path, sizeof path, "/proc/%s/ns/pid", pid);
	int ns = open(path, O_RDONLY | O_CLOEXEC);
	if (ns < 0)
		fail();
	// Opened before the join: the host's /proc, the file the value is written through. The
	// kernel applies the write to the writer's pid namespace, not the one /proc belongs to.
	int sysctl = open("/proc/sys/vm/memfd_noexec", O_WRONLY | O_CLOEXEC);
	if (sysctl < 0)
		fail();
	if (setns(ns, CLONE_NEWPID) < 0)
		fail();
	pid_t child = fork();
	if (child < 0)
		fail();
	if (child == 0) {
		if (write(sysctl, "2", 1) != 1)
			fail();
		_exit(0);
	}
	int status;
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			fail();
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 125);
}
