// Package landlock confines a container's processes with a Landlock ruleset that means something:
// read anywhere under the root, write only to the writable mounts and a few device files, execute
// only from the read-only root (W^X). It is strict: if the kernel cannot enforce all of it,
// Restrict fails.
//
// The ruleset does not handle Landlock's TCP rights. They are port-only: a bind or connect rule
// cannot tell the container's own loopback from the world, so any rule set there either breaks
// servers and clients talking over loopback (every bind and connect failed with a bare EACCES) or
// opens the port toward every peer. The container's own network namespace is the boundary (with
// no network attached it holds only loopback); what it may reach beyond is decided by policy and
// enforced in that namespace's plumbing, where the addresses are known. (Landlock's TCP rules
// also do not cover MPTCP sockets.)
//
// The ruleset does not use Landlock's signal and abstract unix socket scopes. A scope confines a
// process to its own domain, and every Restrict call makes a new one: a process started later with
// exec is confined by its own call, in a sibling domain, and with the scopes it could neither
// signal the container's processes (kill -HUP 1, nginx -s reload, pg_ctl stop) nor reach their
// abstract sockets. Landlock has no way to join an existing domain. What the scopes would keep
// out is already out of reach: every container has its own PID namespace (a process outside it
// has no pid the container can name, and pidfd_send_signal refuses a target outside the caller's
// namespace) and its own network namespace (abstract unix sockets live in one), and the floor
// refuses to join an existing one of either.
package landlock

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Rules describe what the sandboxed process may do. Paths in Writable are container paths ("/tmp")
// resolved under Root; with the process already pivoted into its root, Root is "/".
type Rules struct {
	// Root is the container's root directory.
	Root string
	// Writable lists the writable mounts (tmpfs /tmp, /run, /var/tmp, /dev/shm, rw bind mounts).
	// They are the only directories the process may write to, and it may never execute from them.
	Writable []string
	// WritableExec lists writable mounts the process may also execute from (a volume policy
	// granted exec); no other writable mount may lie below one.
	WritableExec []string
	// WritableRoot makes the whole root writable too (a granted writable root): execution is
	// granted where it would be anyway (every part of the root that holds no writable mount),
	// so files the workload writes into the root can be executed (W^X is given up there).
	WritableRoot bool
}

// MinABI is the lowest Landlock ABI that can enforce every part of Rules: 5 brought ioctl on
// devices.
const MinABI = 5

// ErrUnsupported is wrapped when the kernel's Landlock cannot enforce the rules.
var ErrUnsupported = errors.New("landlock cannot enforce the sandbox rules on this kernel")

// ABI returns the running kernel's Landlock ABI version, 0 when Landlock is unavailable (not built
// in, or not in the boot-time lsm= list).
func ABI() int {
	v, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if errno != 0 {
		return 0
	}
	return int(v)
}

// Access is a set of Landlock filesystem rights (LANDLOCK_ACCESS_FS_* in linux/landlock.h).
type Access uint64

// The rights up to ABI 5, by their UAPI names.
const (
	accessExecute    Access = unix.LANDLOCK_ACCESS_FS_EXECUTE
	accessWriteFile  Access = unix.LANDLOCK_ACCESS_FS_WRITE_FILE
	accessReadFile   Access = unix.LANDLOCK_ACCESS_FS_READ_FILE
	accessReadDir    Access = unix.LANDLOCK_ACCESS_FS_READ_DIR
	accessRemoveDir  Access = unix.LANDLOCK_ACCESS_FS_REMOVE_DIR
	accessRemoveFile Access = unix.LANDLOCK_ACCESS_FS_REMOVE_FILE
	accessMakeChar   Access = unix.LANDLOCK_ACCESS_FS_MAKE_CHAR
	accessMakeDir    Access = unix.LANDLOCK_ACCESS_FS_MAKE_DIR
	accessMakeReg    Access = unix.LANDLOCK_ACCESS_FS_MAKE_REG
	accessMakeSock   Access = unix.LANDLOCK_ACCESS_FS_MAKE_SOCK
	accessMakeFifo   Access = unix.LANDLOCK_ACCESS_FS_MAKE_FIFO
	accessMakeBlock  Access = unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK
	accessMakeSym    Access = unix.LANDLOCK_ACCESS_FS_MAKE_SYM
	accessRefer      Access = unix.LANDLOCK_ACCESS_FS_REFER
	accessTruncate   Access = unix.LANDLOCK_ACCESS_FS_TRUNCATE
	accessIoctlDev   Access = unix.LANDLOCK_ACCESS_FS_IOCTL_DEV
)

// Filesystem access rights, named by intent.
const (
	fsRead  = accessReadFile | accessReadDir
	fsExec  = accessExecute
	fsWrite = accessWriteFile | accessTruncate | accessRemoveDir | accessRemoveFile | accessMakeDir |
		accessMakeReg | accessMakeSock | accessMakeFifo | accessMakeSym | accessRefer
	// fsDevRW is for device files: read, write and O_TRUNC (shells open "> /dev/null" with it).
	fsDevRW = accessReadFile | accessWriteFile | accessTruncate
	// fsFile are the rights a rule on a regular file (not a directory) may carry.
	fsFile = accessReadFile | accessWriteFile | accessTruncate | accessExecute
	// fsHandled is every filesystem right up to ABI 5; anything not granted below is denied,
	// including MAKE_CHAR/MAKE_BLOCK everywhere and IOCTL_DEV outside the terminal devices.
	fsHandled = accessExecute | accessWriteFile | accessReadFile | accessReadDir | accessRemoveDir |
		accessRemoveFile | accessMakeChar | accessMakeDir | accessMakeReg | accessMakeSock |
		accessMakeFifo | accessMakeBlock | accessMakeSym | accessRefer | accessTruncate | accessIoctlDev
)

// Restrict enforces r on the calling thread and everything it executes, setting no_new_privs as
// Landlock requires; it locks the calling goroutine to its OS thread for good (never unlocked, so
// the Go runtime ends the thread rather than reuse it if the goroutine ends), and the caller
// executes the workload from that thread. The process's other threads are left as they are: they
// run only this runtime's code and the kernel ends them at execve, after which the workload's
// first thread is this one (SECURITY.md, "Landlock, no_new_privs and capabilities on one
// thread"). It fails closed: an ABI below MinABI, a missing root or writable path, or any kernel
// error is returned and nothing is relaxed. Call it late in container init: after the mounts are
// final and after every write to /proc (MAC exec attributes, oom_score_adj), which the ruleset
// forbids; before the seccomp filter (which may block landlock_* syscalls).
func Restrict(r Rules) error { return restrict(r, ABI()) }

func restrict(r Rules, abi int) error {
	if abi < MinABI {
		return fmt.Errorf("%w: kernel Landlock ABI %d, need %d", ErrUnsupported, abi, MinABI)
	}
	grants, err := Plan(r)
	if err != nil {
		return err
	}
	var flags uintptr
	if abi >= 7 {
		// Log denials by the container's programs too (not only by the runtime before execve), so
		// the audit trail shows what the workload tried. Only logging depends on ABI 7.
		flags |= unix.LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON
	}
	runtime.LockOSThread() // never unlocked, see above
	ruleset, err := newRuleset(grants)
	if err != nil {
		return err
	}
	defer unix.Close(ruleset)
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("landlock restrict: prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	if _, _, errno := unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, uintptr(ruleset), flags, 0); errno != 0 {
		return fmt.Errorf("landlock restrict: landlock_restrict_self: %w", errno)
	}
	return nil
}

// newRuleset makes a ruleset handling fsHandled (and no network right or scope) that allows
// exactly grants; the descriptor is close-on-exec.
func newRuleset(grants []Grant) (int, error) {
	attr := unix.LandlockRulesetAttr{Handled_access_fs: uint64(fsHandled)}
	fd, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr), 0)
	if errno != 0 {
		return -1, fmt.Errorf("landlock restrict: landlock_create_ruleset: %w", errno)
	}
	for _, g := range grants {
		if err := addRule(int(fd), g); err != nil {
			unix.Close(int(fd))
			return -1, err
		}
	}
	return int(fd), nil
}

// addRule adds g as a path-beneath rule, through an O_PATH descriptor of g.Path.
func addRule(ruleset int, g Grant) error {
	if g.Access&^fsHandled != 0 || g.Access == 0 {
		return fmt.Errorf("landlock rule for %s: access %#x is empty or not handled", g.Path, uint64(g.Access))
	}
	fd, err := unix.Open(g.Path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("landlock rule for %s: %w", g.Path, err)
	}
	defer unix.Close(fd)
	attr := unix.LandlockPathBeneathAttr{Allowed_access: uint64(g.Access), Parent_fd: int32(fd)}
	_, _, errno := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(ruleset), unix.LANDLOCK_RULE_PATH_BENEATH,
		uintptr(unsafe.Pointer(&attr)), 0, 0, 0)
	runtime.KeepAlive(&attr)
	if errno != 0 {
		return fmt.Errorf("landlock rule for %s (access %#x): landlock_add_rule: %w", g.Path, uint64(g.Access), errno)
	}
	return nil
}
