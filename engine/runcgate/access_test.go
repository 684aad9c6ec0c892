package runcgate

import (
	"testing"

	"bulwark.dev/bulwark/sandbox"
)

type sinkFunc func(id, action string, attrs map[string]string)

func (f sinkFunc) Event(id, action string, attrs map[string]string) { f(id, action, attrs) }

// An access refusal reaches the log and is appended to the audit log (caller's tenant, container,
// operation, owner) before Event returns; other events only reach the log.
func TestAuditRefusals(t *testing.T) {
	sr := t.TempDir()
	var logged []string
	next := sinkFunc(func(id, action string, _ map[string]string) { logged = append(logged, id+" "+action) })
	fail := func(err error) { t.Errorf("audit failed: %v", err) }
	sink := AuditRefusals(Config{StateRoot: sr, UID: 0}, "kill", next, fail)
	sink.Event("c1", "start", nil)
	sink.Event("c1", sandbox.EventAccessRefused, map[string]string{"tenant": "bob", "owner": "alice"})
	if len(logged) != 2 {
		t.Errorf("logged %v", logged)
	}
	recs := runcRecords(t, sr)
	if len(recs) != 1 {
		t.Fatalf("audit records %+v, want the refusal only", recs)
	}
	r := recs[0]
	if r.Type != "container" || r.Action != sandbox.EventAccessRefused || r.Tenant != "bob" || r.ContainerID != "c1" ||
		r.Attrs["operation"] != "kill" || r.Attrs["owner"] != "alice" || r.Attrs["runtime"] != "bulwark-runc" {
		t.Errorf("refusal record %+v", r)
	}

	var failed error
	AuditRefusals(Config{StateRoot: "relative"}, "kill", next, func(err error) { failed = err }).
		Event("c1", sandbox.EventAccessRefused, map[string]string{"tenant": "bob", "owner": "alice"})
	if failed == nil {
		t.Error("an audit that could not be written was not reported")
	}
}
