package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/besideexe"
	"bulwark.dev/bulwark/sandbox"
	"bulwark.dev/bulwark/signing/record"
)

// AdminName is the binary beside bulwark that links what the bulwark CLI's run path does not:
// OPA for `policy` and `bench`, go-tuf and sigstore for `trust` and for a full TUF refresh
// (TrustResolveCommand), go-containerregistry for `image pull` and `image push`.
const AdminName = "bulwark-admin"

// AdminBuildEnv tells bulwark-admin the build of the binary that executed it: it serves only its
// own build (their state and arguments are one build's).
const AdminBuildEnv = "_BULWARK_ADMIN_BUILD"

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
	fd, path, _, err := besideexe.Open(AdminName)
	if err != nil {
		return nil, fmt.Errorf("trust resolution: %w", err)
	}
	defer unix.Close(fd)
	args := []string{TrustResolveCommand, trustDir, ref}
	if offline {
		args = append(args, "--offline")
	}
	cmd := exec.Command("/proc/self/fd/"+strconv.Itoa(fd), args...)
	cmd.Args[0] = AdminName
	cmd.Env = append(os.Environ(), AdminBuildEnv+"="+sandbox.BuildID())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimSpace(strings.TrimPrefix(stderr.String(), "bulwark: ")); msg != "" {
			return nil, errors.New(msg)
		}
		return nil, fmt.Errorf("trust resolution by %s: %w", path, err)
	}
	var t record.Target
	dec := json.NewDecoder(&stdout)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil || t.Digest.Validate() != nil {
		return nil, fmt.Errorf("trust resolution by %s: an answer that does not decode: %v", path, err)
	}
	if t.Name != record.TargetPath(ref) {
		return nil, fmt.Errorf("trust resolution by %s: answered %q for %q", path, t.Name, record.TargetPath(ref))
	}
	return &t, nil
}
