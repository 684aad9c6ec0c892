package sandbox

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"bulwark.dev/bulwark/profiles"
)

// TestFloorNetwork: the floor's result says what it does to networking (no TCP port rule, the
// socket kinds seccomp refuses, MPTCP among them, with the errno), so a refused socket call can be
// traced to a reason in the decision, a dry run and the audit trail.
func TestFloorNetwork(t *testing.T) {
	res, err := floorRuntime(t).Floor(floorSpec())
	if err != nil {
		t.Fatal(err)
	}
	n := res.Network
	if n.Namespace != "private" || !strings.Contains(n.TCP, "no port rule") {
		t.Errorf("network floor %+v", n)
	}
	var mptcp bool
	for _, s := range n.RefusedSockets {
		if s.Errno == "" || s.Reason == "" {
			t.Errorf("refused socket without errno or reason: %+v", s)
		}
		mptcp = mptcp || strings.Contains(s.Reason, "MPTCP") && s.Errno == "EPERM"
	}
	if !mptcp || len(n.RefusedSockets) < 3 {
		t.Errorf("refused sockets %+v: want MPTCP, raw and packet sockets named", n.RefusedSockets)
	}
}

// TestFloorRefusesRetiredTCPAnnotations: the annotations that once opened Landlock TCP ports are
// refused with the reason, never accepted and ignored.
func TestFloorRefusesRetiredTCPAnnotations(t *testing.T) {
	for _, a := range []string{"dev.bulwark.landlock.bind-tcp", "dev.bulwark.landlock.connect-tcp"} {
		s := floorSpec()
		s.Annotations = map[string]string{a: "8080", "other": "kept"}
		res, err := floorRuntime(t).Floor(s)
		if err != nil {
			t.Fatal(err)
		}
		err = res.Err()
		if !errors.Is(err, ErrFloor) || !strings.Contains(err.Error(), a) || !strings.Contains(err.Error(), "network namespace") {
			t.Errorf("%s: err = %v, want the floor's refusal naming it and why", a, err)
		}
		if _, ok := res.Spec.Annotations[a]; ok || res.Spec.Annotations["other"] != "kept" {
			t.Errorf("%s: effective annotations %v", a, res.Spec.Annotations)
		}
		if len(res.Refusals) != 1 || res.Refusals[0].Field != RefusedAnnotation || res.Refusals[0].Value != "8080" {
			t.Errorf("%s: refusals %+v", a, res.Refusals)
		}
	}
}

// TestRefusedSocketsKept: the socket refusals kept in the source are the embedded profile's; when
// the profile changes, this test says what to write. Another profile's are read from it.
func TestRefusedSocketsKept(t *testing.T) {
	got := refusedSocketsOf(profiles.DefaultSeccompNotes())
	if !slices.Equal(got, refusedSockets) {
		t.Errorf("refusedSockets = %#v, want %#v", refusedSockets, got)
	}
	if !slices.Equal(defaultRefusedSockets(defaultProfileSum), got) {
		t.Error("the kept refusals are not the network floor's")
	}
	want, err := json.Marshal(refusedSockets)
	if err != nil {
		t.Fatal(err)
	}
	if text, ok := RefusedSocketsJSON(slices.Clone(refusedSockets)); !ok || text != string(want) {
		t.Errorf("RefusedSocketsJSON of the kept refusals = %s, %v; want %s", text, ok, want)
	}
	other := slices.Clone(refusedSockets)
	other[0].Errno = "EACCES"
	for _, rs := range [][]RefusedSocket{nil, {}, other, refusedSockets[1:]} {
		if text, ok := RefusedSocketsJSON(rs); ok {
			t.Errorf("RefusedSocketsJSON(%v) = %s: only the kept refusals have kept text", rs, text)
		}
	}
	kept := refusedSockets
	refusedSockets = []RefusedSocket{{Errno: "EPERM", Reason: "stale"}}
	t.Cleanup(func() { refusedSockets = kept })
	if !slices.Equal(defaultRefusedSockets("0"+defaultProfileSum[1:]), got) {
		t.Error("another profile's refusals are not read from it")
	}
}
