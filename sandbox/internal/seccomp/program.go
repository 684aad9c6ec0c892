package seccomp

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/sandbox/internal/seccomp/bpfload"
)

// maxInstructions is the kernel's BPF_MAXINSNS for classic BPF seccomp programs.
const maxInstructions = bpfload.MaxInstructions

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
	insns, err := bpfload.Decode(raw)
	if err != nil {
		return nil, err
	}
	return &Program{Digest: digest, insns: insns}, nil
}

// FromInstructions is the Program of insns, compiled from the profile of that digest.
func FromInstructions(digest string, insns []unix.SockFilter) *Program {
	return &Program{Digest: digest, insns: insns}
}

// Instructions returns the program's instructions (shared, not copied).
func (p *Program) Instructions() []unix.SockFilter { return p.insns }

// ErrNotLoaded wraps every failure of Load; the caller must refuse to start the container.
var ErrNotLoaded = bpfload.ErrNotLoaded

// Load installs the program on every thread of the calling process (see bpfload.Load).
func (p *Program) Load() error { return bpfload.Load(p.insns, p.Flags) }
