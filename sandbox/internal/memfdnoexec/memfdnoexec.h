// bulwark_raise_memfd_noexec writes "2" to sysctl (an open /proc/sys/vm/memfd_noexec) from a
// child in the pid namespace of the process pidns (a pidfd), then returns the calling thread to
// the pid namespace ownns for its children (*restored is 0 if that failed: the thread must not
// be used again).
// It returns 0 or an errno.
int bulwark_raise_memfd_noexec(int pidns, int ownns, int sysctl, int *restored);
