package engine

import (
	"path/filepath"

	"bulwark.dev/bulwark/signing"
)

// TrustStatus is the state root's trust as a run would see it: the repository and root it is
// pinned to, and the metadata verified by a refresh (every role's version and expiry, every
// signed target and the role that signed it).
type TrustStatus struct {
	Pin      signing.PinInfo
	Verified *signing.TrustedView
}

// TrustStatus refreshes the pinned repository's metadata under the metadata cache's lock, as
// a run's resolution does, and reports it.
func (e *Engine) TrustStatus() (*TrustStatus, error) {
	dir := filepath.Join(e.cfg.Root, "trust")
	pin, err := signing.Pinned(dir)
	if err != nil {
		return nil, err
	}
	client, err := signing.OpenClient(dir, false)
	if err != nil {
		return nil, err
	}
	unlock, err := flockFile(filepath.Join(dir, "cache.lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	v, err := client.Trusted()
	if err != nil {
		return nil, err
	}
	return &TrustStatus{Pin: pin, Verified: v}, nil
}
