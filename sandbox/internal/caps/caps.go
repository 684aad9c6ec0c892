// Package caps classifies the capabilities a container asks for and applies the resulting set to the
// calling thread (bounding = permitted = effective = the set; inheritable and ambient always empty).
package caps

import (
	"errors"
	"fmt"
	"math/bits"
	"sort"
	"strings"
)

// Cap is a capability number as the kernel numbers them (CAP_CHOWN = 0 …).
type Cap uint

// Set is a set of capabilities, bit n standing for Cap n (the layout of /proc/<pid>/status CapEff).
type Set uint64

// The capability numbers from linux/capability.h. Kept here, not taken from x/sys/unix, so the
// classification tables below read as one closed list that a reviewer can check against the header.
const (
	CHOWN              Cap = 0
	DAC_OVERRIDE       Cap = 1
	DAC_READ_SEARCH    Cap = 2
	FOWNER             Cap = 3
	FSETID             Cap = 4
	KILL               Cap = 5
	SETGID             Cap = 6
	SETUID             Cap = 7
	SETPCAP            Cap = 8
	LINUX_IMMUTABLE    Cap = 9
	NET_BIND_SERVICE   Cap = 10
	NET_BROADCAST      Cap = 11
	NET_ADMIN          Cap = 12
	NET_RAW            Cap = 13
	IPC_LOCK           Cap = 14
	IPC_OWNER          Cap = 15
	SYS_MODULE         Cap = 16
	SYS_RAWIO          Cap = 17
	SYS_CHROOT         Cap = 18
	SYS_PTRACE         Cap = 19
	SYS_PACCT          Cap = 20
	SYS_ADMIN          Cap = 21
	SYS_BOOT           Cap = 22
	SYS_NICE           Cap = 23
	SYS_RESOURCE       Cap = 24
	SYS_TIME           Cap = 25
	SYS_TTY_CONFIG     Cap = 26
	MKNOD              Cap = 27
	LEASE              Cap = 28
	AUDIT_WRITE        Cap = 29
	AUDIT_CONTROL      Cap = 30
	SETFCAP            Cap = 31
	MAC_OVERRIDE       Cap = 32
	MAC_ADMIN          Cap = 33
	SYSLOG             Cap = 34
	WAKE_ALARM         Cap = 35
	BLOCK_SUSPEND      Cap = 36
	AUDIT_READ         Cap = 37
	PERFMON            Cap = 38
	BPF                Cap = 39
	CHECKPOINT_RESTORE Cap = 40
)

// names indexes the capability names (without "CAP_") by number; its length is the number of
// capabilities this package knows. Capabilities a newer kernel adds beyond it are unknown to Parse
// and are always dropped from the bounding set by Apply.
var names = [...]string{
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
	"SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
	"IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
	"SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
	"LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
	"WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
}

// Last is the highest capability this package knows.
const Last = Cap(len(names) - 1)

// Forbidden capabilities are refused outright: a request for one is an error with the reason
// (Reason), never a silent drop, because each gives power over the host or the kernel — or has been
// the key of a known escape — even when held only inside the container's user namespace.
// Nothing in Docker's default set is here, so specs written for Docker are not refused; those
// extras are dropped instead (see Grantable).
var Forbidden = Of(
	SYS_ADMIN,       // mount, namespaces, bpf, keyring …: the root of most breakouts (CVE-2022-0492)
	SYS_PTRACE,      // read/write other processes' memory, defeats seccomp (pre-4.8 ptrace bypass)
	SYS_MODULE,      // load kernel code
	DAC_READ_SEARCH, // open_by_handle_at: the Shocker breakout (2014) reads host files by handle
	NET_ADMIN,       // reconfigure interfaces, netfilter: large kernel attack surface (CVE-2022-1015)
	SYS_RAWIO,       // iopl/ioperm, /dev/mem, SG_IO: raw hardware access
	BPF,             // load BPF programs: verifier bugs are kernel escapes (CVE-2021-3490)
	PERFMON,         // perf_event_open: kernel address leaks, CVE-2023-2235-class bugs
	SYS_BOOT,        // reboot, kexec_load: replace the running kernel
	SYS_TIME,        // set the host clock (not namespaced)
	MAC_ADMIN,       // change the LSM policy that confines the container
	MAC_OVERRIDE,    // bypass that policy
	SYSLOG,          // read/clear the kernel log: kernel pointer leaks (kptr_restrict bypass)
	// Judged equally dangerous:
	SYS_RESOURCE,       // overrides the rlimits, quotas and reserved space the floor sets (host DoS)
	LINUX_IMMUTABLE,    // immutable/append-only files the host operator then cannot delete
	CHECKPOINT_RESTORE, // split out of SYS_ADMIN: ns_last_pid, set_tid, /proc/<pid>/map_files
	AUDIT_CONTROL,      // reconfigure or disable the host's kernel audit
	AUDIT_READ,         // read the host-wide audit multicast stream (other tenants' activity)
	WAKE_ALARM,         // host power management: wake the machine from suspend
	BLOCK_SUSPEND,      // host power management: keep the machine from suspending
	SYS_PACCT,          // acct(): the kernel writes host-wide accounting records to a file
	SYS_TTY_CONFIG,     // vhangup and console configuration of real terminals
)

// Grantable capabilities are kept when requested: each only has meaning over objects the
// container's user namespace owns (its files, its processes, its network namespace's low ports).
var Grantable = Of(CHOWN, DAC_OVERRIDE, FOWNER, FSETID, SETUID, SETGID, KILL, NET_BIND_SERVICE)

// Every capability not in Forbidden or Grantable (NET_RAW, MKNOD, SETFCAP, SETPCAP, SYS_CHROOT,
// AUDIT_WRITE, SYS_NICE, IPC_LOCK, …) is dropped when requested and the drop is recorded by the caller
// as a raise. NET_RAW (raw packets, CVE-2020-14386) and SETFCAP (file capabilities) are in Docker's
// default set, so refusing them would refuse every Docker spec; seccomp blocks raw sockets anyway.

// ErrForbidden is wrapped by errors about forbidden capabilities.
var ErrForbidden = errors.New("capability forbidden by the floor")

// Of returns the set holding exactly cs.
func Of(cs ...Cap) Set {
	var s Set
	for _, c := range cs {
		s |= 1 << c
	}
	return s
}

// Has reports whether c is in s.
func (s Set) Has(c Cap) bool { return c < 64 && s&(1<<c) != 0 }

// Caps lists the members of s in ascending order.
func (s Set) Caps() []Cap {
	out := make([]Cap, 0, bits.OnesCount64(uint64(s)))
	for v := uint64(s); v != 0; v &= v - 1 {
		out = append(out, Cap(bits.TrailingZeros64(v)))
	}
	return out
}

// Names lists the members of s as "CAP_…" names, as the runtime spec writes them.
func (s Set) Names() []string {
	out := make([]string, 0, bits.OnesCount64(uint64(s)))
	for _, c := range s.Caps() {
		out = append(out, c.String())
	}
	return out
}

// String renders s as a comma-separated name list (for raises and error messages).
func (s Set) String() string { return strings.Join(s.Names(), ",") }

// String returns the "CAP_…" name of c.
func (c Cap) String() string {
	if c <= Last {
		return "CAP_" + names[c]
	}
	return fmt.Sprintf("CAP_%d", uint(c))
}

// Reason says why c is forbidden; empty when it is not.
func Reason(c Cap) string {
	if !Forbidden.Has(c) {
		return ""
	}
	return reasons[c]
}

var reasons = map[Cap]string{
	SYS_ADMIN:          "mount, namespace and kernel administration: the root of most container breakouts",
	SYS_PTRACE:         "tracing other processes reads and writes their memory and defeats seccomp",
	SYS_MODULE:         "loads kernel modules",
	DAC_READ_SEARCH:    "open_by_handle_at reaches host files by handle (the Shocker breakout)",
	NET_ADMIN:          "network and netfilter administration: large kernel attack surface",
	SYS_RAWIO:          "raw I/O port and device access",
	BPF:                "loads BPF programs: verifier bugs are kernel escapes",
	PERFMON:            "perf events leak kernel addresses and expose perf bugs",
	SYS_BOOT:           "reboots or replaces the running kernel",
	SYS_TIME:           "sets the host clock, which is not namespaced",
	MAC_ADMIN:          "changes the MAC policy that confines the container",
	MAC_OVERRIDE:       "bypasses the MAC policy that confines the container",
	SYSLOG:             "reads the kernel log, leaking kernel pointers",
	SYS_RESOURCE:       "overrides resource limits and reserves set by the floor",
	LINUX_IMMUTABLE:    "sets immutable and append-only file flags the host cannot easily undo",
	CHECKPOINT_RESTORE: "chooses pids and reads other mappings (split out of SYS_ADMIN)",
	AUDIT_CONTROL:      "reconfigures or disables host kernel auditing",
	AUDIT_READ:         "reads the host-wide audit stream",
	WAKE_ALARM:         "controls host power management (wake alarms)",
	BLOCK_SUSPEND:      "controls host power management (blocks suspend)",
	SYS_PACCT:          "makes the kernel write host-wide process accounting",
	SYS_TTY_CONFIG:     "configures and hangs up real terminals",
}

// Parse turns capability names, with or without the "CAP_" prefix and in any case, into a Set.
// An unknown name is an error: a typo must not silently become "no capability" or "all".
func Parse(list []string) (Set, error) {
	var s Set
	for _, n := range list {
		c, ok := lookup(n)
		if !ok {
			return 0, fmt.Errorf("unknown capability %q", n)
		}
		s |= 1 << c
	}
	return s, nil
}

func lookup(name string) (Cap, bool) {
	n := strings.ToUpper(strings.TrimSpace(name))
	n = strings.TrimPrefix(n, "CAP_")
	for i, known := range names {
		if known == n {
			return Cap(i), true
		}
	}
	return 0, false
}

// Classify splits a requested set into what is kept (grantable), what is forbidden (the caller
// refuses the request, see Check) and what is dropped (the caller records a raise).
func Classify(requested Set) (kept, forbidden, dropped Set) {
	kept = requested & Grantable
	forbidden = requested & Forbidden
	dropped = requested &^ (Grantable | Forbidden)
	return kept, forbidden, dropped
}

// Check returns an error wrapping ErrForbidden naming every forbidden capability in requested and why.
func Check(requested Set) error {
	_, forbidden, _ := Classify(requested)
	if forbidden == 0 {
		return nil
	}
	msgs := make([]string, 0, bits.OnesCount64(uint64(forbidden)))
	for _, c := range forbidden.Caps() {
		msgs = append(msgs, c.String()+": "+Reason(c))
	}
	sort.Strings(msgs)
	return fmt.Errorf("%w: %s", ErrForbidden, strings.Join(msgs, "; "))
}
