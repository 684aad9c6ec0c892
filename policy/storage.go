package policy

import (
	"context"
	"errors"
)

// StorageQuery is the storage decision of the same policy: how large a tenant's volume or
// writable root may be (default/storage.rego). It is decided apart from runs, because a volume
// is made by `volume create` too, with no container.
const StorageQuery = "data.bulwark.run.storage_decision"

// StorageAPIVersion is the api_version of a storage request document.
const StorageAPIVersion = "bulwark.dev/storage/v1"

// DecideStorage evaluates req against the storage decision, prepared on first use from the
// already compiled policy. Like Decide it never errors: an undefined or malformed result denies.
func (e *Engine) DecideStorage(ctx context.Context, req StorageRequest) StorageDecision {
	req.APIVersion = StorageAPIVersion
	d, obj := e.evalSide(ctx, &e.storage, StorageQuery, req)
	if obj == nil {
		return StorageDecision{Reasons: d.Reasons}
	}
	fail := func(err error) StorageDecision {
		return StorageDecision{Reasons: []Reason{{Code: CodePolicyError, Message: "storage decision: " + err.Error()}}}
	}
	out := StorageDecision{Allow: d.Allow, Reasons: d.Reasons}
	for k, dst := range map[string]*int64{"volumeSize": &out.VolumeSize, "writableRootSize": &out.WritableRootSize} {
		n, err := optInt(obj, k)
		if err != nil {
			return fail(err)
		}
		if n != nil {
			if *n < 0 {
				return fail(errors.New("a negative size"))
			}
			*dst = *n
		}
	}
	return out
}
