package document

import (
	"maps"
	"slices"
)

// Audit-only annotations. A request document may carry annotations that only name the request
// for the audit trail (bulwark run's request id) and differ on every request: a decision keyed by
// the whole document would never be found again. A cache opened with audit-only annotation keys
// leaves those out of the key it stores and looks up, but stores such an entry only for a policy
// proven never to read them (Storable.Unread, from the evaluator that parsed the policy): under that
// policy, a document that differs only there cannot be decided differently. The entry records
// which keys it was stored without, and a lookup uses it only for a request from which exactly
// those were left out: a policy that may read them, or any doubt, keys the whole document as
// before. The audit record of a cached decision still names the whole document's digest.

// decisionKey is the digest of req without the annotations among auditOnly, and the keys left
// out (sorted; none when req carries none of them: then it is digest, req's InputDigest).
func decisionKey(req *Request, digest string, auditOnly []string) (string, []string) {
	var left []string
	for _, k := range auditOnly {
		if _, ok := req.Annotations[k]; ok {
			left = append(left, k)
		}
	}
	if len(left) == 0 {
		return digest, nil
	}
	slices.Sort(left)
	left = slices.Compact(left)
	cp := *req
	cp.Annotations = maps.Clone(req.Annotations)
	for _, k := range left {
		delete(cp.Annotations, k)
	}
	return InputDigest(&cp), left
}
