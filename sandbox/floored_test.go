package sandbox

import (
	"context"
	"errors"
	"slices"
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

// CreateFloored names a container's fresh UTS namespace after it without touching the caller's
// floor result: the engine encodes that result's spec into its plan while the create runs.
func TestCreateFlooredLeavesResultAlone(t *testing.T) {
	r := newTestRuntime(t)
	bundle, spec := busyboxBundle(t)
	spec.Hostname = ""
	spec, binds, err := ResolveBinds(spec, bundle)
	if err != nil {
		t.Fatal(err)
	}
	defer binds.Close()
	res, err := r.FloorResolved(spec, binds)
	if err != nil {
		t.Fatal(err)
	}
	// Spare capacity: an append to the result's raises would write into the caller's array.
	res.Raises = slices.Grow(res.Raises, 4)
	raises := slices.Clone(res.Raises)
	c, err := r.CreateFloored(context.Background(), "f2", bundle, res, IO{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Delete(true)
	if res.Spec.Hostname != "" {
		t.Errorf("the caller's spec got hostname %q", res.Spec.Hostname)
	}
	spare := res.Raises[len(raises):cap(res.Raises)]
	if !slices.Equal(res.Raises, raises) || slices.ContainsFunc(spare, func(r Raise) bool { return r.Field == "hostname" }) {
		t.Errorf("the caller's raises changed: %d of %d, spare capacity %+v", len(res.Raises), len(raises), spare)
	}
	st, err := c.State()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(st.Raises, func(r Raise) bool { return r.Field == "hostname" && r.To == "f2" }) {
		t.Errorf("the container's record has no hostname raise: %+v", st.Raises)
	}
}
