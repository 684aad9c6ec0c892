package engine

import (
	"context"
	"errors"
	"strings"
	"testing"

	"bulwark.dev/bulwark/errdefs"
	"bulwark.dev/bulwark/policy/document"
)

// A policy that allows a writable root but sizes it at nothing grants none: --read-only=false is
// refused by policy, saying so (it was refused later as "not the last floor result of this
// runtime", and before that the root was silently left read-only).
func TestWritableRootOfNoSizeRefused(t *testing.T) {
	e, err := Open(Config{Root: t.TempDir(), Policies: zeroWritableRoot{inProcess(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	size, err := e.writableRootSize(context.Background(), "default", nil)
	if !errors.Is(err, errdefs.ErrRefusedByPolicy) || !strings.Contains(err.Error(), "no writable root is granted") {
		t.Errorf("writable root of size 0: size %d, err %v; want a refusal by policy", size, err)
	}
}

// zeroWritableRoot is a policy whose storage decisions allow a writable root of size 0.
type zeroWritableRoot struct{ Policies }

func (z zeroWritableRoot) Prepare(ctx context.Context, src document.SourceOptions, auditOnly []string) (Evaluator, Prepared, error) {
	ev, p, err := z.Policies.Prepare(ctx, src, auditOnly)
	return zeroRootEvaluator{ev}, p, err
}

type zeroRootEvaluator struct{ Evaluator }

func (zeroRootEvaluator) DecideStorage(context.Context, document.StorageRequest) (document.StorageDecision, error) {
	return document.StorageDecision{Allow: true}, nil
}
