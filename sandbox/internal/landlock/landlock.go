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

	ll "github.com/landlock-lsm/go-landlock/landlock"
	llsys "github.com/landlock-lsm/go-landlock/landlock/syscall"
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
	v, err := llsys.LandlockGetABIVersion()
	if err != nil {
		return 0
	}
	return v
}

// Filesystem access rights, named by intent.
const (
	fsRead  = llsys.AccessFSReadFile | llsys.AccessFSReadDir
	fsExec  = llsys.AccessFSExecute
	fsWrite = llsys.AccessFSWriteFile | llsys.AccessFSTruncate | llsys.AccessFSRemoveDir |
		llsys.AccessFSRemoveFile | llsys.AccessFSMakeDir | llsys.AccessFSMakeReg |
		llsys.AccessFSMakeSock | llsys.AccessFSMakeFifo | llsys.AccessFSMakeSym | llsys.AccessFSRefer
	// fsDevRW is for device files: read, write and O_TRUNC (shells open "> /dev/null" with it).
	fsDevRW = llsys.AccessFSReadFile | llsys.AccessFSWriteFile | llsys.AccessFSTruncate
	// fsHandled is every filesystem right up to ABI 5; anything not granted below is denied,
	// including MAKE_CHAR/MAKE_BLOCK everywhere and IOCTL_DEV outside the terminal devices.
	fsHandled = llsys.AccessFSExecute | llsys.AccessFSWriteFile | llsys.AccessFSReadFile |
		llsys.AccessFSReadDir | llsys.AccessFSRemoveDir | llsys.AccessFSRemoveFile |
		llsys.AccessFSMakeChar | llsys.AccessFSMakeDir | llsys.AccessFSMakeReg |
		llsys.AccessFSMakeSock | llsys.AccessFSMakeFifo | llsys.AccessFSMakeBlock |
		llsys.AccessFSMakeSym | llsys.AccessFSRefer | llsys.AccessFSTruncate | llsys.AccessFSIoctlDev
)

// Restrict enforces r on every thread of the calling process (and everything it executes), setting
// no_new_privs as Landlock requires. It fails closed: an ABI below MinABI, a missing root or writable
// path, or any kernel error is returned and nothing is relaxed. Call it late in container init:
// after the mounts are final and after every write to /proc (MAC exec attributes, oom_score_adj),
// which the ruleset forbids; before the seccomp filter (which may block landlock_* syscalls).
func Restrict(r Rules) error { return restrict(r, ABI()) }

func restrict(r Rules, abi int) error {
	if abi < MinABI {
		return fmt.Errorf("%w: kernel Landlock ABI %d, need %d", ErrUnsupported, abi, MinABI)
	}
	grants, err := Plan(r)
	if err != nil {
		return err
	}
	cfg := config()
	if abi >= 7 {
		// Log denials by the container's programs too (not only by the runtime before execve), so
		// the audit trail shows what the workload tried. Only logging depends on ABI 7.
		cfg = cfg.EnableLoggingForSubprocesses()
	}
	if err := cfg.Restrict(toRules(grants)...); err != nil {
		return fmt.Errorf("landlock restrict: %w", err)
	}
	return nil
}

func config() ll.Config {
	return ll.Config{HandledAccessFS: fsHandled}
}

func toRules(grants []Grant) []ll.Rule {
	out := make([]ll.Rule, 0, len(grants))
	for _, g := range grants {
		out = append(out, ll.PathAccess(g.Access, g.Path))
	}
	return out
}
