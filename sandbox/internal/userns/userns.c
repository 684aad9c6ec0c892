// Makes a user namespace for a container, and the namespaces it will own that the caller asks for,
// without forking the runtime. A Go program cannot
// unshare a user namespace (it is never single-threaded), and os/exec forks the whole runtime
// (page tables of its heap copied, then torn down by the exec) whenever the clone flags ask for
// one. Here a CLONE_VM clone on a small stack of its own creates the namespace and only waits:
// it shares the runtime's memory, so nothing is copied, and it never runs anything else. It
// closes its copy of the runtime's descriptors but the read end of a pipe, and exits when the
// runtime closes the write end (or dies). Every signal is blocked in it, and it writes no errno
// (the only thread-local state it shares with the thread that made it).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "userns.h"

#define STACK_SIZE (64 * 1024)

static int holder_main(void *arg) {
	int rfd = (int)(intptr_t)arg;
	if (rfd > 0)
		syscall(SYS_close_range, 0, rfd - 1, 0);
	syscall(SYS_close_range, rfd + 1, ~0U, 0);
	char c;
	syscall(SYS_read, rfd, &c, 1);
	return 0;
}

int bulwark_userns_start(struct bulwark_userns *h, int flags) {
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return errno;
	void *stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED) {
		int err = errno;
		close(p[0]);
		close(p[1]);
		return err;
	}
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	// Exit signal 0: no SIGCHLD reaches the runtime; the holder is collected with __WALL. The
	// kernel makes the user namespace first and the others of flags in it, owned by it.
	pid_t pid = clone(holder_main, (char *)stack + STACK_SIZE, CLONE_VM | CLONE_NEWUSER | flags, (void *)(intptr_t)p[0]);
	int err = pid < 0 ? errno : 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(p[0]);
	if (pid < 0) {
		close(p[1]);
		munmap(stack, STACK_SIZE);
		return err;
	}
	h->pid = pid;
	h->release = p[1];
	h->stack = stack;
	return 0;
}

int bulwark_userns_stop(struct bulwark_userns *h) {
	close(h->release);
	int status;
	while (waitpid(h->pid, &status, __WALL) < 0) {
		if (errno != EINTR)
			return errno; // the stack stays mapped: the holder may still run on it
	}
	munmap(h->stack, STACK_SIZE);
	return 0;
}
