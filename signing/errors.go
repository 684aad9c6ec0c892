package signing

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"bulwark.dev/bulwark/signing/record"
)

// Verification failures, each a distinct attack or mistake. Errors returned by the client wrap
// exactly one of these (and the go-tuf error that revealed it).
var (
	ErrRollback       = errors.New("rollback: metadata older than what this client already trusts")
	ErrExpired        = errors.New("freeze: metadata has expired")
	ErrMixAndMatch    = errors.New("mix-and-match: metadata does not match the version or hash its parent signed")
	ErrThreshold      = errors.New("signature threshold not met")
	ErrTargetNotFound = errors.New("reference is not a signed target")
	ErrNotDelegated   = errors.New("role is not delegated this path")
	ErrDigestMismatch = record.ErrDigestMismatch
	ErrRepository     = errors.New("repository metadata is malformed")
	ErrUnreachable    = errors.New("trust repository unreachable")
)

// classify maps a go-tuf error to one of ours, keeping it in the chain.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var bad *metadata.ErrBadVersionNumber
	switch {
	case errors.As(err, &bad):
		// go-tuf words a version lower than the trusted one as "... must be >= ..." (timestamp,
		// snapshot) or, for a new snapshot listing an older role, "expected <role>.json version";
		// a file whose version differs from what its parent named is "expected <role> version"
		// or "expected N, got M": that is mix-and-match.
		if strings.Contains(bad.Msg, "must be >=") || strings.Contains(bad.Msg, ".json version") {
			return fmt.Errorf("%w: %w", ErrRollback, err)
		}
		return fmt.Errorf("%w: %w", ErrMixAndMatch, err)
	case errors.Is(err, &metadata.ErrExpiredMetadata{}):
		return fmt.Errorf("%w: %w", ErrExpired, err)
	case errors.Is(err, &metadata.ErrLengthOrHashMismatch{}):
		return fmt.Errorf("%w: %w", ErrMixAndMatch, err)
	case errors.Is(err, &metadata.ErrUnsignedMetadata{}):
		return fmt.Errorf("%w: %w", ErrThreshold, err)
	case errors.Is(err, &metadata.ErrDownload{}), errors.Is(err, &metadata.ErrDownloadHTTP{}), errors.As(err, new(*url.Error)):
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	case errors.Is(err, &metadata.ErrRepository{}):
		return fmt.Errorf("%w: %w", ErrRepository, err)
	}
	return err
}
