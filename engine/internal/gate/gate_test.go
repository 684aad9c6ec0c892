package gate

import (
	"encoding/json"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/policy"
	"bulwark.dev/bulwark/policy/document"
	"bulwark.dev/bulwark/sandbox"
)

func TestApplyConstraints(t *testing.T) {
	mem, swap, pids := int64(1<<30), int64(1<<30), int64(4096)
	eff := &specs.Spec{Linux: &specs.Linux{Resources: &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: &mem, Swap: &swap}, Pids: &specs.LinuxPids{Limit: &pids}}}}
	maxMem, maxPids := int64(256<<20), int64(8192)
	changes := ApplyConstraints(eff, policy.Constraints{MaxMemory: &maxMem, MaxPids: &maxPids})
	r := eff.Linux.Resources
	if *r.Memory.Limit != 256<<20 || *r.Memory.Swap != 256<<20 || *r.Pids.Limit != 4096 {
		t.Errorf("limits: memory %d swap %d pids %d", *r.Memory.Limit, *r.Memory.Swap, *r.Pids.Limit)
	}
	if len(changes) != 1 || changes[0].Field != "linux.resources.memory.limit" {
		t.Errorf("changes %+v", changes)
	}
}

// The audit attributes written without encoding/json are its text, byte for byte.
func TestJSONWithoutEncodingJSON(t *testing.T) {
	strs := []string{"", "/bin/sh", `<a href="x">&</a>`, "\\\b\f\n\r\t\x00\x1f\x7f", "\xff bad", "\u2028\u2029", "é中😀"}
	for _, ss := range [][]string{nil, {}, strs} {
		want, _ := json.Marshal(ss)
		if got := JSONString(ss); got != string(want) {
			t.Errorf("JSONString(%q) = %s, want %s", ss, got, want)
		}
	}
	var rs []document.Reason
	for i, s := range strs {
		rs = append(rs, document.Reason{Code: s, Message: strs[(i+1)%len(strs)], Path: strs[(i+2)%len(strs)]})
	}
	for _, r := range [][]document.Reason{nil, {}, rs} {
		want, _ := json.Marshal(r)
		if got := reasonsJSON(r); got != string(want) {
			t.Errorf("reasonsJSON(%q) = %s, want %s", r, got, want)
		}
	}
	var ss []sandbox.RefusedSocket
	for i, s := range strs {
		ss = append(ss, sandbox.RefusedSocket{Errno: s, Reason: strs[(i+1)%len(strs)]})
	}
	for _, r := range [][]sandbox.RefusedSocket{nil, {}, ss} {
		want, _ := json.Marshal(r)
		if got := refusedSocketsJSON(r); got != string(want) {
			t.Errorf("refusedSocketsJSON(%q) = %s, want %s", r, got, want)
		}
	}
	var raises []sandbox.Raise
	for i, s := range strs {
		raises = append(raises, sandbox.Raise{Field: s, From: strs[(i+1)%len(strs)], To: strs[(i+2)%len(strs)]})
	}
	for _, r := range [][]sandbox.Raise{nil, {}, raises} {
		want, _ := json.Marshal(r)
		if got := RaisesAttrs(r)["raises"]; got != string(want) {
			t.Errorf("RaisesAttrs(%q) = %s, want %s", r, got, want)
		}
	}
}
