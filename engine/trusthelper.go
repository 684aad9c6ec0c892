package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"bulwark.dev/bulwark/signing/record"
)

// TrustResolveCommand is bulwark-admin's hidden command that resolves a reference with a full
// TUF refresh: `TrustResolveCommand TRUST-DIR REF [--offline]`, the target as JSON on its
// standard output.
const TrustResolveCommand = "__trust-resolve"

// HelperTrust resolves through bulwark-admin beside the running binary (the same owner, no one
// else may write it, the same build), executed through the descriptor that was checked. Any
// failure is the resolution's: the run is refused.
type HelperTrust struct{}

// Resolve implements TrustResolver.
func (HelperTrust) Resolve(trustDir, ref string, offline bool) (*record.Target, error) {
	args := []string{TrustResolveCommand, trustDir, ref}
	if offline {
		args = append(args, "--offline")
	}
	out, path, err := runAdmin(context.Background(), "trust resolution", nil, args...)
	if err != nil {
		return nil, err
	}
	var t record.Target
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil || t.Digest.Validate() != nil {
		return nil, fmt.Errorf("trust resolution by %s: an answer that does not decode: %v", path, err)
	}
	if t.Name != record.TargetPath(ref) {
		return nil, fmt.Errorf("trust resolution by %s: answered %q for %q", path, t.Name, record.TargetPath(ref))
	}
	return &t, nil
}
