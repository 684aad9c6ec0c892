package signing

import "bulwark.dev/bulwark/signing/record"

// Resolver resolves references through the repository a trust directory pins (OpenClient),
// under its cache's lock: the full TUF client workflow, after the record of the last refresh
// (record.Resolve) could not answer.
type Resolver struct{}

// Resolve resolves ref in trustDir's pinned repository (cached metadata only if offline).
func (Resolver) Resolve(trustDir, ref string, offline bool) (*Target, error) {
	client, err := OpenClient(trustDir, offline)
	if err != nil {
		return nil, err
	}
	unlock, err := record.LockCache(trustDir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return client.Resolve(ref)
}
