#include <sys/types.h>

// bulwark_userns is a holder process: a member of a new user namespace (and of the namespaces
// of the flags bulwark_userns_start was given, made in it) that waits until release is closed,
// on stack.
struct bulwark_userns {
	pid_t pid;
	int release;
	void *stack;
};

// bulwark_userns_start creates the holder; bulwark_userns_stop ends and collects it. Both
// return 0 or an errno.
int bulwark_userns_start(struct bulwark_userns *h, int flags);
int bulwark_userns_stop(struct bulwark_userns *h);
