// Package bpfload installs compiled seccomp programs (raw classic BPF) on the calling process
// with a raw seccomp(2) call: no cgo and no libseccomp, so the setup child links it alone. The
// programs are compiled by the runtime (package seccomp), which uses this package to load them too.
package bpfload

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// MaxInstructions is the kernel's BPF_MAXINSNS for classic BPF seccomp programs.
const MaxInstructions = 4096

// Decode reads raw struct sock_filter bytes (native byte order), as exported by libseccomp.
func Decode(raw []byte) ([]unix.SockFilter, error) {
	if len(raw) == 0 || len(raw)%8 != 0 {
		return nil, fmt.Errorf("seccomp program: %d bytes is not a whole number of BPF instructions", len(raw))
	}
	n := len(raw) / 8
	if n > MaxInstructions {
		return nil, fmt.Errorf("seccomp program: %d instructions exceed the kernel limit of %d", n, MaxInstructions)
	}
	insns := make([]unix.SockFilter, n)
	for i := range insns {
		r := raw[8*i : 8*i+8]
		insns[i] = unix.SockFilter{
			Code: binary.NativeEndian.Uint16(r[0:2]),
			Jt:   r[2],
			Jf:   r[3],
			K:    binary.NativeEndian.Uint32(r[4:8]),
		}
	}
	return insns, nil
}

// ErrNotLoaded wraps every failure of Load; the caller must refuse to start the container.
var ErrNotLoaded = errors.New("seccomp filter not loaded")

// Load installs insns on every thread of the calling process (SECCOMP_FILTER_FLAG_TSYNC, plus
// flags) with a raw seccomp(2) call: no cgo, so it is safe in the re-executed init right before
// execve. It sets no_new_privs first, which the kernel requires for unprivileged filters and which
// the floor wants anyway. Calling Load again stacks another filter; the kernel applies the
// strictest action of all, so a second profile can only take more away.
func Load(insns []unix.SockFilter, flags uint) error {
	if len(insns) == 0 {
		return fmt.Errorf("%w: empty program", ErrNotLoaded)
	}
	if len(insns) > MaxInstructions {
		return fmt.Errorf("%w: %d instructions exceed %d", ErrNotLoaded, len(insns), MaxInstructions)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("%w: prctl(PR_SET_NO_NEW_PRIVS): %w", ErrNotLoaded, err)
	}
	prog := unix.SockFprog{Len: uint16(len(insns)), Filter: &insns[0]}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(unix.SECCOMP_FILTER_FLAG_TSYNC)|uintptr(flags), uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(insns)
	if errno != 0 {
		return fmt.Errorf("%w: seccomp(SECCOMP_SET_MODE_FILTER, TSYNC): %w", ErrNotLoaded, errno)
	}
	if r != 0 {
		// With TSYNC a positive return is the id of a thread that could not be synchronised.
		return fmt.Errorf("%w: seccomp TSYNC failed for thread %d", ErrNotLoaded, r)
	}
	return nil
}
