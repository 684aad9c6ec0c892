package engine

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/signing"
)

// ErrVerification wraps every refusal to run an image: not a signed target, metadata that fails
// TUF verification, a local tag that differs from the signed digest, or a blob whose bytes do not
// match its digest.
var ErrVerification = errors.New("image verification failed")

// verifiedImage is an image whose reference resolved through TUF and whose every blob in the
// store matched its digest.
type verifiedImage struct {
	Ref    string
	Target *signing.Target
	Desc   ocispec.Descriptor
	Config *ocispec.Image
}

// verifyImage resolves ref through TUF, checks that the local tag points at exactly the signed
// manifest, and reads every blob of it against its digest. Each step is audited.
func (e *Engine) verifyImage(ref string, t *trail) (*verifiedImage, error) {
	fail := func(step string, err error) (*verifiedImage, error) {
		t.add(audit.TypeTrust, "verify.failed", map[string]string{"reference": ref, "step": step, "error": err.Error()})
		return nil, fmt.Errorf("%w: %s: %w", ErrVerification, ref, err)
	}
	// The pinned root and repository are configured by 'bulwark trust init' or 'trust pin'.
	client, err := signing.OpenClient(filepath.Join(e.cfg.Root, "trust"), false)
	if err != nil {
		return fail("trust root", err)
	}
	// Concurrent runs share the metadata cache; go-tuf rewrites it on refresh.
	unlock, err := flockFile(filepath.Join(e.cfg.Root, "trust", "cache.lock"))
	if err != nil {
		return fail("trust cache", err)
	}
	target, err := client.Resolve(ref)
	unlock()
	if err != nil {
		return fail("resolve", err)
	}
	t.setImage(target.Digest.String())
	t.add(audit.TypeTrust, "resolve", map[string]string{
		"reference": ref, "target": target.Name, "digest": target.Digest.String(),
		"length": strconv.FormatInt(target.Length, 10), "role": target.Role,
	})
	desc, err := e.store.Resolve(ref)
	if err != nil {
		return fail("store", err)
	}
	if err := target.VerifyDigest(desc.Digest); err != nil {
		return fail("digest", err)
	}
	manifest, err := e.store.ReadBlob(desc.Digest, 4<<20)
	if err != nil {
		return fail("manifest", err)
	}
	if err := target.VerifyManifest(manifest); err != nil {
		return fail("manifest", err)
	}
	// Every blob, every run: a blob changed on disk since import is caught before it is used.
	if err := e.store.Verify(desc); err != nil {
		return fail("blobs", err)
	}
	m, err := e.store.Manifest(desc)
	if err != nil {
		return fail("manifest", err)
	}
	cfg, err := e.store.Config(m)
	if err != nil {
		return fail("config", err)
	}
	t.add(audit.TypeImage, "verify", map[string]string{
		"reference": ref, "digest": desc.Digest.String(), "layers": strconv.Itoa(len(m.Layers)),
	})
	return &verifiedImage{Ref: ref, Target: target, Desc: desc, Config: cfg}, nil
}
