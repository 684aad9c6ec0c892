// Package landlock confines a container's processes with a Landlock ruleset that means something:
// read anywhere under the root, write only to the writable mounts and a few device files, execute
// only from the read-only root (W^X), TCP only to allowed ports, abstract unix sockets and signals
// scoped to the sandbox. It is strict: if the kernel cannot enforce all of it, Restrict fails.
package landlock

import (
	"errors"
	"fmt"
	"slices"

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
	// BindTCP and ConnectTCP are the TCP ports the process may bind and connect to; empty is none.
	BindTCP, ConnectTCP []uint16
	// ScopeSignals forbids signalling processes outside the sandbox's Landlock domain;
	// ScopeAbstractUnix forbids connecting to abstract unix sockets created outside it.
	// Each Restrict call makes a new domain: a process confined by a separate call (an exec into
	// the container) is in a sibling domain, and with these scopes the two cannot signal each other
	// or connect to each other's abstract sockets. The pid and network namespaces already hide
	// the host's processes and abstract sockets; the scopes are defence in depth behind them.
	ScopeSignals, ScopeAbstractUnix bool
}

// MinABI is the lowest Landlock ABI that can enforce every part of Rules: 4 brought TCP rules,
// 5 ioctl on devices, 6 the signal and abstract unix socket scopes.
const MinABI = 6

// ErrUnsupported is wrapped when the kernel's Landlock cannot enforce the rules.
var ErrUnsupported = errors.New("landlock cannot enforce the sandbox rules on this kernel")

// ABI returns the running kernel's Landlock ABI version, 0 when Landlock is unavailable (not built
// in, or not in the boot-time lsm= list). Like go-landlock, it counts a kernel whose signal scoping
// still has the bug fixed by erratum 2 as ABI 5, so that ABI() >= MinABI exactly when Restrict
// can succeed.
func ABI() int {
	v, err := llsys.LandlockGetABIVersion()
	if err != nil {
		return 0
	}
	if v >= 6 {
		if errata, err := llsys.LandlockGetErrata(); err != nil || errata&signalScopingErratum == 0 {
			return 5
		}
	}
	return v
}

// signalScopingErratum is the Landlock erratum bit for the fixed signal scoping (6.12 backport).
const signalScopingErratum = 0x2

// Filesystem access rights, named by intent.
const (
	fsRead  = llsys.AccessFSReadFile | llsys.AccessFSReadDir
	fsExec  = llsys.AccessFSExecute
	fsWrite = llsys.AccessFSWriteFile | llsys.AccessFSTruncate | llsys.AccessFSRemoveDir |
		llsys.AccessFSRemoveFile | llsys.AccessFSMakeDir | llsys.AccessFSMakeReg |
		llsys.AccessFSMakeSock | llsys.AccessFSMakeFifo | llsys.AccessFSMakeSym | llsys.AccessFSRefer
	// fsDevRW is for device files: read, write and O_TRUNC (shells open "> /dev/null" with it).
	fsDevRW = llsys.AccessFSReadFile | llsys.AccessFSWriteFile | llsys.AccessFSTruncate
	// fsHandled is every filesystem right up to ABI 6; anything not granted below is denied,
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
	cfg := config(r)
	if abi >= 7 {
		// Log denials by the container's programs too (not only by the runtime before execve), so
		// the audit trail shows what the workload tried. Only logging depends on ABI 7.
		cfg = cfg.EnableLoggingForSubprocesses()
	}
	if err := cfg.Restrict(toRules(grants, r)...); err != nil {
		return fmt.Errorf("landlock restrict: %w", err)
	}
	return nil
}

func config(r Rules) ll.Config {
	cfg := ll.Config{
		HandledAccessFS:  fsHandled,
		HandledAccessNet: llsys.AccessNetBindTCP | llsys.AccessNetConnectTCP,
	}
	if r.ScopeAbstractUnix {
		cfg.Scoped |= llsys.ScopeAbstractUnixSocket
	}
	if r.ScopeSignals {
		cfg.Scoped |= llsys.ScopeSignal
	}
	return cfg
}

func toRules(grants []Grant, r Rules) []ll.Rule {
	out := make([]ll.Rule, 0, len(grants)+len(r.BindTCP)+len(r.ConnectTCP))
	for _, g := range grants {
		out = append(out, ll.PathAccess(g.Access, g.Path))
	}
	// Landlock's TCP rules do not cover MPTCP (see MACHINE-NOTES): the seccomp floor must refuse
	// IPPROTO_MPTCP sockets or these rules can be bypassed with socket(AF_INET, SOCK_STREAM, 262).
	for _, p := range slices.Compact(slices.Sorted(slices.Values(r.BindTCP))) {
		out = append(out, ll.BindTCP(p))
	}
	for _, p := range slices.Compact(slices.Sorted(slices.Values(r.ConnectTCP))) {
		out = append(out, ll.ConnectTCP(p))
	}
	return out
}
