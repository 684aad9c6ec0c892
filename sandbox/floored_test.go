package sandbox

import (
	"context"
	"errors"
	"testing"
	"time"
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

// A runtime with the same options but where its events and steps go floors every spec alike: it
// creates another's result (the engine decides with one and creates with another, which times
// the steps). One whose options differ otherwise (here the tenant) is another runtime's floor.
func TestFloorsAs(t *testing.T) {
	r := newTestRuntime(t)
	same := &Runtime{opts: r.opts}
	same.opts.Events, same.opts.Steps = discardSink{}, discardSink{}
	otherTenant := &Runtime{opts: r.opts}
	otherTenant.opts.Tenant += "-other"
	if !r.floorsAs(same) || !same.floorsAs(r) {
		t.Error("a runtime differing only in its event and step sinks floors otherwise")
	}
	if r.floorsAs(otherTenant) {
		t.Error("another tenant's runtime floors alike")
	}
}

// discardSink receives events and steps and keeps none.
type discardSink struct{}

func (discardSink) Event(string, string, map[string]string) {}
func (discardSink) Step(string, string, time.Duration)      {}
