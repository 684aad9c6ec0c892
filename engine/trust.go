package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/errdefs"
	"bulwark.dev/bulwark/image"
	"bulwark.dev/bulwark/signing/record"
)

// ErrVerification wraps every refusal to run an image: not a signed target, metadata that fails
// TUF verification, a local tag that differs from the signed digest, or a blob whose bytes do not
// match its digest.
var ErrVerification = errdefs.New(errdefs.ErrUntrusted, "image verification failed")

// verifiedImage is an image whose reference resolved through TUF and whose every blob in the
// store matched its digest.
type verifiedImage struct {
	Ref      string
	Target   *record.Target
	Desc     ocispec.Descriptor
	Manifest *ocispec.Manifest
	Config   *ocispec.Image
}

// VerifyImage is `bulwark trust verify`: ref is resolved through TUF (refreshing the metadata
// unless offline) and, when the store holds an image under ref, that image is checked exactly
// as a run checks it — the tag against the signed digest, the manifest, and every config and
// layer blob against its digest. With no local image the signed target alone is returned. The
// steps are audited like a run's.
func (e *Engine) VerifyImage(ref string, who Identity, offline bool) (*record.Target, error) {
	t := newTrail(e.audit, who, "", NewID())
	img, err := e.verify(ref, offline, false, t, nil)
	if ferr := t.Flush(); ferr != nil {
		err = errors.Join(err, ferr)
	}
	if err != nil {
		return nil, err
	}
	return img.Target, nil
}

// verify is the one verification path. needLocal: the store must hold an image under ref (a
// run); otherwise a missing local image ends the check after the TUF resolution. clk times the
// resolution and the verification apart.
func (e *Engine) verify(ref string, offline, needLocal bool, t *trail, clk *stepClock) (*verifiedImage, error) {
	fail := func(step string, err error) (*verifiedImage, error) {
		t.Add(audit.TypeTrust, "verify.failed", map[string]string{"reference": ref, "step": step, "error": err.Error()})
		return nil, fmt.Errorf("%w: %s: %w", ErrVerification, ref, err)
	}
	target, step, err := e.resolve(ref, offline, t)
	if err != nil {
		return fail(step, err)
	}
	clk.lap("tuf")
	desc, err := e.store.Resolve(ref)
	if !needLocal && errors.Is(err, image.ErrNotFound) {
		return &verifiedImage{Ref: ref, Target: target}, nil
	}
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
	// The manifest read above matched its digest (ReadBlob) and the signed target; it is
	// parsed from those bytes rather than read a second and third time.
	m, err := image.ParseManifest(manifest)
	if err != nil {
		return fail("manifest", err)
	}
	// Every blob, every run: a blob changed on disk since import is caught before it is used.
	cfg, err := e.store.VerifyManifest(m)
	if err != nil {
		return fail("blobs", err)
	}
	t.Add(audit.TypeImage, "verify", map[string]string{
		"reference": ref, "digest": desc.Digest.String(), "layers": strconv.Itoa(len(m.Layers)),
	})
	clk.lap("verify")
	return &verifiedImage{Ref: ref, Target: target, Desc: desc, Manifest: m, Config: cfg}, nil
}

// ResolveSigned resolves ref through TUF alone (refreshing the metadata unless offline), audited;
// `image pull --verify` pulls the digest it returns.
func (e *Engine) ResolveSigned(ref string, who Identity, offline bool) (*record.Target, error) {
	t := newTrail(e.audit, who, "", NewID())
	target, step, err := e.resolve(ref, offline, t)
	if err != nil {
		t.Add(audit.TypeTrust, "verify.failed", map[string]string{"reference": ref, "step": step, "error": err.Error()})
		err = fmt.Errorf("%w: %s: %w", ErrVerification, ref, err)
	}
	if ferr := t.Flush(); ferr != nil {
		err = errors.Join(err, ferr)
	}
	return target, err
}

// TrustResolver resolves a reference through a trust directory's pinned TUF repository with the
// full client workflow (go-tuf, sigstore), for what the record of the last full refresh
// (signing/record) cannot answer: signing.Resolver in process, or HelperTrust.
type TrustResolver interface {
	Resolve(trustDir, ref string, offline bool) (*record.Target, error)
}

// resolve looks ref up in the pinned TUF repository: from the record of the last full refresh
// while the repository and the cache are as it left them, else by a full refresh (Config.Trust);
// on failure it names the step that failed.
func (e *Engine) resolve(ref string, offline bool, t *trail) (*record.Target, string, error) {
	// The pinned root and repository are configured by 'bulwark trust init' or 'trust pin'.
	dir := filepath.Join(e.cfg.Root, "trust")
	var target *record.Target
	if _, err := os.Stat(filepath.Join(dir, "client.json")); err == nil && !offline {
		// Concurrent runs share the metadata cache; a full refresh rewrites it.
		unlock, err := record.LockCache(dir)
		if err != nil {
			return nil, "trust cache", err
		}
		target = record.Resolve(dir, ref, nil)
		unlock()
	}
	if target == nil {
		var err error
		if target, err = e.cfg.Trust.Resolve(dir, ref, offline); err != nil {
			return nil, "resolve", err
		}
	}
	t.SetImage(target.Digest.String())
	t.Add(audit.TypeTrust, "resolve", map[string]string{
		"reference": ref, "target": target.Name, "digest": target.Digest.String(),
		"length": strconv.FormatInt(target.Length, 10), "role": target.Role,
	})
	return target, "", nil
}
