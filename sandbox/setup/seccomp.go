package setup

import (
	"fmt"

	"bulwark.dev/bulwark/sandbox/internal/seccomp"
)

// loadSeccomp installs the programs on the calling process (child side, last step before execve).
func loadSeccomp(blobs []SeccompBlob) error {
	if len(blobs) == 0 {
		return fmt.Errorf("%w: no program (the default profile is mandatory)", seccomp.ErrNotLoaded)
	}
	for _, b := range blobs {
		p, err := seccomp.FromBytes(b.Digest, b.BPF)
		if err != nil {
			return err
		}
		p.Flags = b.Flags
		if err := p.Load(); err != nil {
			return err
		}
	}
	return nil
}
