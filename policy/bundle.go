package policy

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/keys"
)

// ErrSignature is returned for a bundle whose signature is missing or does not verify.
var ErrSignature = errors.New("policy bundle signature refused")

// maxBundleSize bounds what is read from disk (OPA's own default limit is 1 GiB).
const maxBundleSize = 64 << 20

// bundleKeyID is the only key id bundles are verified with: pinning it means the token's own
// "kid" header cannot pick another key.
const bundleKeyID = "bulwark"

// BundleOptions configure LoadBundle.
type BundleOptions struct {
	// VerificationKey is the PEM public key (RSA, ECDSA P-256/384/521 or Ed25519) the bundle
	// must be signed with. Required: an unsigned bundle is never loaded.
	VerificationKey []byte
	// StateRoot holds policy/bundle-revision.json, the rollback floor.
	StateRoot string
}

// LoadBundle reads an OPA bundle (tar.gz), verifies its signature against the configured key,
// and refuses it if its manifest revision is not newer than (or the same as) the newest
// accepted one. The revision is recorded once the engine has prepared the policy.
func LoadBundle(path string, opts BundleOptions) (*Policy, error) {
	if opts.StateRoot == "" {
		return nil, errors.New("load bundle: no state root for the revision record")
	}
	alg, err := keyAlgorithm(opts.VerificationKey)
	if err != nil {
		return nil, fmt.Errorf("load bundle: verification key: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load bundle: %w", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxBundleSize+1))
	if err != nil {
		return nil, fmt.Errorf("load bundle %s: %w", path, err)
	}
	if len(raw) > maxBundleSize {
		return nil, fmt.Errorf("load bundle %s: larger than %d bytes", path, maxBundleSize)
	}
	sum := sha256.Sum256(raw)
	digest := "sha256:" + hex.EncodeToString(sum[:])

	// Step 1: signature. The reader verifies the JWT over the file list, then every file's
	// hash, and fails on files missing from the signature or present but unsigned.
	vc := bundle.NewVerificationConfig(map[string]*keys.Config{
		bundleKeyID: {Key: string(opts.VerificationKey), Algorithm: alg},
	}, bundleKeyID, "", nil)
	b, err := bundle.NewReader(bytes.NewReader(raw)).
		WithBundleVerificationConfig(vc).
		WithRegoVersion(ast.RegoV1).
		WithSizeLimitBytes(maxBundleSize).
		Read()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrSignature, path, err)
	}
	if len(b.Signatures.Signatures) == 0 || b.Type() != bundle.SnapshotBundleType {
		return nil, fmt.Errorf("%w: %s: not a signed snapshot bundle", ErrSignature, path)
	}
	// Step 2: freshness, which OPA's signatures do not give.
	rev, err := parseRevision(b.Manifest.Revision)
	if err != nil {
		return nil, fmt.Errorf("load bundle %s: %w", path, err)
	}
	if err := checkRevision(opts.StateRoot, rev, digest); err != nil {
		return nil, fmt.Errorf("load bundle %s: %w", path, err)
	}
	// Step 3: contents.
	p := &Policy{Modules: map[string]*ast.Module{}, Data: b.Data}
	for _, m := range b.Modules {
		p.Modules[m.Path] = m.Parsed
	}
	if p.Data == nil {
		p.Data = map[string]any{}
	}
	p.Info = Info{Source: SourceBundle, Location: path, Revision: strconv.FormatUint(rev, 10)}
	p.commit = func() error { return commitRevision(opts.StateRoot, rev, digest) }
	return p, nil
}

// keyAlgorithm picks the JWS algorithm from the public key itself. Only asymmetric keys are
// accepted: an HMAC "verification key" would be a shared secret, readable by whoever can read
// the runtime's configuration.
func keyAlgorithm(pemData []byte) (string, error) {
	block, _ := pem.Decode(pemData)
	if block == nil || block.Type != "PUBLIC KEY" {
		return "", errors.New("want a PEM \"PUBLIC KEY\" block")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return "", err
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return "RS256", nil
	case ed25519.PublicKey:
		return "EdDSA", nil
	case *ecdsa.PublicKey:
		switch k.Curve.Params().BitSize {
		case 256:
			return "ES256", nil
		case 384:
			return "ES384", nil
		case 521:
			return "ES512", nil
		}
	}
	return "", fmt.Errorf("unsupported public key type %T", pub)
}
