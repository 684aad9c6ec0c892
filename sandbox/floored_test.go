package sandbox

import (
	"context"
	"errors"
	"testing"
)

// CreateFloored creates only from a result of its own runtime's floor over resolved bind
// sources that no later floor replaced: a result built by hand, another runtime's, one floored
// without sources, or one whose join decision another floor replaced is refused before anything
// is made.
func TestCreateFlooredOnlyOwnResult(t *testing.T) {
	r, other := newTestRuntime(t), newTestRuntime(t)
	bundle, spec := busyboxBundle(t)
	spec, binds, err := ResolveBinds(spec, bundle)
	if err != nil {
		t.Fatal(err)
	}
	defer binds.Close()
	own, err := r.FloorResolved(spec, binds)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := other.FloorResolved(spec, binds)
	if err != nil {
		t.Fatal(err)
	}
	unresolved, err := r.Floor(spec)
	if err != nil {
		t.Fatal(err)
	}
	forged := &FloorResult{Spec: own.Spec, Seccomp: own.Seccomp, MAC: own.MAC}
	// foreign floored binds after own did: own's join decision is no longer the one binds hold.
	for name, res := range map[string]*FloorResult{"nil": nil, "forged": forged, "other runtime's": foreign, "unresolved": unresolved, "replaced": own} {
		if _, err := r.CreateFloored(context.Background(), "f1", bundle, res, IO{}); !errors.Is(err, ErrFloor) {
			t.Errorf("%s result: err = %v, want ErrFloor", name, err)
		}
	}
	if _, err := r.Load("f1"); err == nil {
		t.Error("a refused CreateFloored left a container behind")
	}
}
