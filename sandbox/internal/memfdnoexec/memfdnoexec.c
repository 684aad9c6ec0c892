// Raises vm.memfd_noexec to 2 in a container's pid namespace. The sysctl is per pid namespace and
// only takes effect for the writer's own (active) pid namespace; the write needs CAP_SYS_ADMIN in
// the namespace's owning user namespace and, since the /proc/sys file is owned by the host's
// root, a writer whose euid is host root (checked again at the write). Container root (an
// unprivileged host uid) can therefore never set it; the runtime can, from a child it creates
// in the container's pid namespace. That child is host root inside the container's pid namespace
// for the length of one write, before the container runs anything of its own.
//
// The child is a CLONE_VM|CLONE_VFORK clone of the calling thread on a small stack of its own:
// it shares the runtime's memory (so it costs no page table copy and no exec of any binary), the
// calling thread is suspended until it exits, every signal is blocked in it, and it only calls
// write(2) and exits. The calling thread joins the pid namespace for its children (setns with
// CLONE_NEWPID changes only that; pidns is a pidfd of a process in it) and goes back to its own
// one after (ownns: a namespace file); the caller discards the thread if going back fails.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memfdnoexec.h"

struct raise_arg {
	int sysctl;
	int err;
};

static int raise_child(void *p) {
	volatile struct raise_arg *a = p;
	a->err = syscall(SYS_write, a->sysctl, "2", 1) == 1 ? 0 : (errno ? errno : EIO);
	return 0;
}

int bulwark_raise_memfd_noexec(int pidns, int ownns, int sysctl, int *restored) {
	// The child's stack, in the caller's frame: the calling thread is suspended while the
	// child runs (CLONE_VFORK).
	char stack[16384] __attribute__((aligned(16)));
	volatile struct raise_arg a = {.sysctl = sysctl, .err = 0};
	sigset_t all, old;
	int err = 0;
	*restored = 1;
	sigfillset(&all);
	if (pthread_sigmask(SIG_SETMASK, &all, &old) != 0)
		return EINVAL;
	if (setns(pidns, CLONE_NEWPID) < 0) {
		err = errno;
		goto out;
	}
	// Exit signal 0: no SIGCHLD reaches the runtime; the child is collected with __WALL.
	pid_t child = clone(raise_child, stack + sizeof stack, CLONE_VM | CLONE_VFORK, (void *)&a);
	if (child < 0)
		err = errno;
	if (setns(ownns, CLONE_NEWPID) < 0)
		*restored = 0;
	if (child > 0) {
		int status;
		while (waitpid(child, &status, __WALL) < 0) {
			if (errno != EINTR) {
				err = errno;
				goto out;
			}
		}
		err = a.err;
		if (err == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
			err = EIO;
	}
out:
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return err;
}
