package signing

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

// signerRole names the targets role whose metadata vouched for path: "targets" or a delegated
// (tenant) role. go-tuf's GetTargetInfo returns the target but not the role it came from, so the
// role is found by repeating the TUF client's pre-order depth-first delegation walk (spec
// 5.6.7) over the metadata that lookup has just verified and loaded: the walk is deterministic,
// so it visits the same roles in the same order and stops at the same one. A role the walk
// reaches but that is not loaded means this walk diverged from go-tuf's; that, or a found target
// that differs from ti, is refused rather than reported under a guessed role.
func signerRole(tm trustedmetadata.TrustedMetadata, path string, ti *metadata.TargetFiles) (string, error) {
	stack := []string{metadata.TARGETS}
	visited := map[string]bool{}
	for len(stack) > 0 {
		role := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if visited[role] {
			continue
		}
		md, ok := tm.Targets[role]
		if !ok {
			break
		}
		if tf, ok := md.Signed.Targets[path]; ok {
			if tf != ti && (tf.Length != ti.Length || !bytes.Equal(tf.Hashes["sha256"], ti.Hashes["sha256"])) {
				break
			}
			return role, nil
		}
		visited[role] = true
		if md.Signed.Delegations == nil {
			continue
		}
		var children []string
		for _, r := range md.Signed.Delegations.GetRolesForTarget(path) {
			children = append(children, r.Name)
			if r.Terminating {
				// A terminating role that matches ends the search: nothing left to backtrack to.
				stack = stack[:0]
				break
			}
		}
		slices.Reverse(children)
		stack = append(stack, children...)
	}
	return "", fmt.Errorf("%w: cannot tell which role signed %s", ErrRepository, path)
}
