package caps

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// Capabilities and ids belong to a thread, not to a process: capset(2), PR_CAPBSET_DROP, the ambient
// set and the raw setgroups/setresgid/setresuid system calls act on the calling thread only. The
// functions below therefore lock the calling goroutine to its OS thread for good (they never
// unlock): the thread that shed its capabilities and switched its ids must be the thread that calls
// execve, which keeps only that thread's credentials, and if the goroutine ends instead, the Go
// runtime kills that thread rather than handing a half-configured thread to another goroutine. The
// process's other threads are left alone (no signal broadcast to every thread, as Go's syscall
// package and glibc do for the id calls): they run only the runtime's own code and are gone after
// execve (SECURITY.md, "Landlock, no_new_privs and capabilities on one thread").

// KernelLast returns the highest capability number the running kernel knows (what
// /proc/sys/kernel/cap_last_cap shows). Apply drops every capability up to it, including ones
// newer than this package, so a kernel upgrade cannot silently hand the container a new
// capability. The bounding set answers without /proc: reading a capability beyond the kernel's
// last fails with EINVAL, and every one up to it reads. The setup child asks after pivot_root,
// where reading the file would leave the container's procfs two inodes and dentries (sys/kernel
// and cap_last_cap), cached for the container's whole life (issue 14).
func KernelLast() (Cap, error) {
	if !capKnown(0) {
		return 0, fmt.Errorf("read bounding set: capability 0: %w", unix.EINVAL)
	}
	// capKnown(lo) holds, and capKnown(hi) does not (or hi is past the 64 bits of a set).
	lo, hi := Cap(0), Cap(64)
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if capKnown(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// capKnown reports whether the kernel knows capability c (PR_CAPBSET_READ does not fail).
func capKnown(c Cap) bool {
	_, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0)
	return err == nil
}

// Apply makes the calling thread hold exactly s: bounding = permitted = effective = s, inheritable
// and ambient empty. It must run as (namespaced) root with the capabilities in s still held, before
// execve; root keeps exactly the bounding set across execve. It verifies the result and fails
// closed.
func Apply(s Set) error {
	runtime.LockOSThread() // never unlocked, see above
	last, err := KernelLast()
	if err != nil {
		return err
	}
	if err := shed(s, last); err != nil {
		return err
	}
	return setAndVerify(s, last)
}

// SwitchUser changes the calling thread's credentials to uid/gid/groups while keeping exactly s, and
// leaves the thread as Apply does. Note that a non-root user loses permitted and effective
// capabilities at the next execve of a file without file capabilities, since the ambient set is
// always empty: only root in the container keeps s across execve (as with Docker's --user).
func SwitchUser(uid, gid int, groups []int, s Set) error {
	runtime.LockOSThread() // never unlocked, see above
	last, err := KernelLast()
	if err != nil {
		return err
	}
	if err := shed(s, last); err != nil {
		return err
	}
	// Without KEEPCAPS, leaving uid 0 clears the permitted set and capset could not restore s.
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_KEEPCAPS, 1): %w", err)
	}
	// This thread only (see above).
	if err := unix.Setgroups(groups); err != nil {
		return fmt.Errorf("setgroups %v: %w", groups, err)
	}
	if err := setres(sysSetresgid, gid); err != nil {
		return fmt.Errorf("setresgid %d: %w", gid, err)
	}
	if err := setres(sysSetresuid, uid); err != nil {
		return fmt.Errorf("setresuid %d: %w", uid, err)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_KEEPCAPS, 0): %w", err)
	}
	return setAndVerify(s, last)
}

// ClearGroups empties the calling thread's supplementary groups (this thread only, see above).
func ClearGroups() error {
	runtime.LockOSThread() // never unlocked, see above
	return unix.Setgroups(nil)
}

// setres sets the calling thread's real, effective and saved id to id with the raw system call nr
// (setresuid or setresgid).
func setres(nr uintptr, id int) error {
	if _, _, errno := unix.RawSyscall(nr, uintptr(id), uintptr(id), uintptr(id)); errno != 0 {
		return errno
	}
	return nil
}

// shed drops the bounding set down to s and clears the ambient set. Both need CAP_SETPCAP, so they
// come before capset (which may remove it).
func shed(s Set, last Cap) error {
	for c := Cap(0); c <= last; c++ {
		if s.Has(c) {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			return fmt.Errorf("drop %v from the bounding set: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear the ambient set: %w", err)
	}
	// Keep it empty: without this lock the workload could copy a permitted capability into its
	// inheritable and ambient sets and keep it across execve of a non-root program.
	bits, err := unix.PrctlRetInt(unix.PR_GET_SECUREBITS, 0, 0, 0, 0)
	if err != nil {
		return fmt.Errorf("read securebits: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_SECUREBITS, uintptr(bits)|secbitNoAmbientRaise|secbitNoAmbientRaiseLocked, 0, 0, 0); err != nil {
		return fmt.Errorf("lock the ambient set (securebits): %w", err)
	}
	return nil
}

// From linux/securebits.h (not in x/sys/unix).
const (
	secbitNoAmbientRaise       = 1 << 6
	secbitNoAmbientRaiseLocked = 1 << 7
)

func setAndVerify(s Set, last Cap) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(s), Permitted: uint32(s)},
		{Effective: uint32(s >> 32), Permitted: uint32(s >> 32)},
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset permitted=effective=%v: %w", s, err)
	}
	got, err := current(last)
	if err != nil {
		return err
	}
	want := State{Permitted: s, Effective: s, Bounding: s}
	if got != want {
		return fmt.Errorf("capabilities after apply are %+v, want %+v", got, want)
	}
	return nil
}

// State is one thread's five capability sets.
type State struct {
	Inheritable, Permitted, Effective, Bounding, Ambient Set
}

// Current reads the calling thread's capability sets from the kernel (capget and prctl, not
// /proc/self/status, which shows the main thread).
func Current() (State, error) {
	last, err := KernelLast()
	if err != nil {
		return State{}, err
	}
	return current(last)
}

// current is Current with the kernel's last capability already known.
func current(last Cap) (State, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return State{}, fmt.Errorf("capget: %w", err)
	}
	st := State{
		Inheritable: Set(data[0].Inheritable) | Set(data[1].Inheritable)<<32,
		Permitted:   Set(data[0].Permitted) | Set(data[1].Permitted)<<32,
		Effective:   Set(data[0].Effective) | Set(data[1].Effective)<<32,
	}
	for c := Cap(0); c <= last; c++ {
		in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0)
		if err != nil {
			return State{}, fmt.Errorf("read bounding %v: %w", c, err)
		}
		if in == 1 {
			st.Bounding |= 1 << c
		}
		amb, err := unix.PrctlRetInt(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_IS_SET, uintptr(c), 0, 0)
		if err != nil {
			return State{}, fmt.Errorf("read ambient %v: %w", c, err)
		}
		if amb == 1 {
			st.Ambient |= 1 << c
		}
	}
	return st, nil
}
