package setup

import (
	"fmt"

	"bulwark.dev/bulwark/sandbox/internal/seccomp/bpfload"
)

// loadSeccomp installs the programs on the calling process (child side, last step before execve).
// They arrive compiled (the runtime's package seccomp); loading them needs no libseccomp.
func loadSeccomp(blobs []SeccompBlob) error {
	if len(blobs) == 0 {
		return fmt.Errorf("%w: no program (the default profile is mandatory)", bpfload.ErrNotLoaded)
	}
	for _, b := range blobs {
		insns, err := bpfload.Decode(b.BPF)
		if err != nil {
			return err
		}
		if err := bpfload.Load(insns, b.Flags); err != nil {
			return err
		}
	}
	return nil
}
