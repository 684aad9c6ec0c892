package seccomp

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// maxInstructions is the kernel's BPF_MAXINSNS for classic BPF seccomp programs.
const maxInstructions = 4096

// Program is a compiled seccomp filter: raw classic BPF, ready for seccomp(2).
type Program struct {
	// Digest is the profile digest (profiles.SeccompDigest) the program was compiled from.
	Digest string
	// Notes lists what the compiler skipped, e.g. syscall names this libseccomp does not know.
	// Docker skips them the same way; Bulwark's floor answers them with its default action.
	Notes []string
	// Flags are extra seccomp(2) filter flags from the profile (SECCOMP_FILTER_FLAG_LOG).
	Flags uint

	insns []unix.SockFilter
}

// Len returns the number of BPF instructions.
func (p *Program) Len() int { return len(p.insns) }

// Bytes returns the program in the kernel's struct sock_filter layout (native byte order).
func (p *Program) Bytes() []byte {
	b := make([]byte, 0, 8*len(p.insns))
	for _, in := range p.insns {
		b = binary.NativeEndian.AppendUint16(b, in.Code)
		b = append(b, in.Jt, in.Jf)
		b = binary.NativeEndian.AppendUint32(b, in.K)
	}
	return b
}

// Sum returns the sha256 of Bytes, to tell programs apart in logs and tests.
func (p *Program) Sum() string {
	s := sha256.Sum256(p.Bytes())
	return hex.EncodeToString(s[:])
}

// FromBytes builds a Program from raw struct sock_filter bytes, as exported by libseccomp.
func FromBytes(digest string, raw []byte) (*Program, error) {
	if len(raw) == 0 || len(raw)%8 != 0 {
		return nil, fmt.Errorf("seccomp program: %d bytes is not a whole number of BPF instructions", len(raw))
	}
	n := len(raw) / 8
	if n > maxInstructions {
		return nil, fmt.Errorf("seccomp program: %d instructions exceed the kernel limit of %d", n, maxInstructions)
	}
	p := &Program{Digest: digest, insns: make([]unix.SockFilter, n)}
	for i := range p.insns {
		r := raw[8*i : 8*i+8]
		p.insns[i] = unix.SockFilter{
			Code: binary.NativeEndian.Uint16(r[0:2]),
			Jt:   r[2],
			Jf:   r[3],
			K:    binary.NativeEndian.Uint32(r[4:8]),
		}
	}
	return p, nil
}

// ErrNotLoaded wraps every failure of Load; the caller must refuse to start the container.
var ErrNotLoaded = errors.New("seccomp filter not loaded")

// Load installs the program on every thread of the calling process (SECCOMP_FILTER_FLAG_TSYNC)
// with a raw seccomp(2) call: no cgo, so it is safe in the re-executed init right before execve.
// It sets no_new_privs first, which the kernel requires for unprivileged filters and which the
// floor wants anyway. Calling Load again stacks another filter; the kernel applies the strictest
// action of all, so a second profile can only take more away.
func (p *Program) Load() error {
	if len(p.insns) == 0 {
		return fmt.Errorf("%w: empty program", ErrNotLoaded)
	}
	if len(p.insns) > maxInstructions {
		return fmt.Errorf("%w: %d instructions exceed %d", ErrNotLoaded, len(p.insns), maxInstructions)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("%w: prctl(PR_SET_NO_NEW_PRIVS): %w", ErrNotLoaded, err)
	}
	prog := unix.SockFprog{Len: uint16(len(p.insns)), Filter: &p.insns[0]}
	flags := uintptr(unix.SECCOMP_FILTER_FLAG_TSYNC) | uintptr(p.Flags)
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(p)
	if errno != 0 {
		return fmt.Errorf("%w: seccomp(SECCOMP_SET_MODE_FILTER, TSYNC): %w", ErrNotLoaded, errno)
	}
	if r != 0 {
		// With TSYNC a positive return is the id of a thread that could not be synchronised.
		return fmt.Errorf("%w: seccomp TSYNC failed for thread %d", ErrNotLoaded, r)
	}
	return nil
}
