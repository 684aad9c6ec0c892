package policy

import (
	"testing"
)

const requestKey = "dev.bulwark.request"

// withRequestID is the allowed request carrying a per-request id annotation.
func withRequestID(t *testing.T, id string) *Request {
	t.Helper()
	req := allowedRequest(t)
	if req.Annotations == nil {
		req.Annotations = map[string]string{}
	}
	req.Annotations[requestKey] = id
	return req
}

// Under a policy that never reads the request id, a request that differs from a decided one only
// there is answered from the cache; anything else that differs is not.
func TestDecisionKeyLeavesOutAnUnreadRequestID(t *testing.T) {
	o := SourceOptions{StateRoot: t.TempDir()}
	want := decideAndStore(t, o, withRequestID(t, "a"), requestKey)
	got, ok := OpenDecisionCache(o, requestKey).Lookup(withRequestID(t, "b"))
	if !ok {
		t.Fatal("a request differing only in its id was not answered from the cache")
	}
	sameDecision(t, "cached decision", got, want)
	if _, ok := OpenDecisionCache(o).Lookup(withRequestID(t, "b")); ok {
		t.Fatal("a cache without audit-only keys used an entry stored without one")
	}
	other := withRequestID(t, "b")
	other.Capabilities = append(other.Capabilities, "CAP_SYS_ADMIN")
	if _, ok := OpenDecisionCache(o, requestKey).Lookup(other); ok {
		t.Fatal("another request was answered from the cache")
	}
	if _, ok := OpenDecisionCache(o, requestKey).Lookup(allowedRequest(t)); ok {
		t.Fatal("a request without the annotation was answered by an entry stored without it")
	}
}

// A policy that reads the request id decides on it: a request with another id is decided again.
func TestDecisionKeyKeepsARequestIDThePolicyReads(t *testing.T) {
	dir := writePolicyDir(t, map[string]string{"p.rego": "package bulwark.run\n\n" +
		`default decision := {"allow": false, "reasons": [{"code": "ID", "message": "not a", "path": ""}]}` + "\n" +
		`decision := {"allow": true, "reasons": []} if input.annotations["` + requestKey + `"] == "a"` + "\n"})
	o := SourceOptions{StateRoot: t.TempDir(), Dir: dir}
	if d := decideAndStore(t, o, withRequestID(t, "a"), requestKey); !d.Allow {
		t.Fatalf("policy denied a: %+v", d)
	}
	if d, ok := OpenDecisionCache(o, requestKey).Lookup(withRequestID(t, "b")); ok {
		t.Fatalf("request b was answered by request a's decision: %+v", d)
	}
	if _, ok := OpenDecisionCache(o, requestKey).Lookup(withRequestID(t, "a")); ok {
		t.Fatal("an entry keyed by the whole document was found by the key without the id")
	}
}

// Every way a module can reach the annotation is a read (or a doubt); constant reads of other
// fields are not.
func TestAnnotationsUnread(t *testing.T) {
	for rule, unread := range map[string]bool{
		`x := input.annotations["` + requestKey + `"]`:    false,
		`x := input["annotations"]["` + requestKey + `"]`: false,
		`x := input.annotations[_]`:                       false,
		`x := input.annotations`:                          false,
		`x := input`:                                      false,
		`x := input[_]`:                                   false,
		`x := count(input)`:                               false,
		`x := json.marshal(input)`:                        false,
		`x := object.get(input, ["annotations", "` + requestKey + `"], "")`:    false,
		`x := object.get(input, "annotations", {})`:                            false,
		`x := object.get(input, ["annotations"], {})`:                          false,
		`x := object.get(input, [], {})`:                                       false,
		`x := object.get(input, k, "") if k := "annotations"`:                  false,
		`x := object.get(object.get(input, "annotations", {}), "other", "")`:   false,
		`y := 1` + "\n" + `x if { y == 1 with input as {} }`:                   false,
		`x := input.annotations.other`:                                         true,
		`x := input.annotations["other"]`:                                      true,
		`x := object.get(input, ["annotations", "other"], "")`:                 true,
		`x := object.get(input, "tenant", "")`:                                 true,
		`x := object.get(object.get(input, "volume", {}), "size", 0)`:          true,
		`x := object.get(input, ["bandwidth", sprintf("%sRate", ["in"])], 0)`:  true,
		`x := object.get(input, ["annotations", sprintf("%s", ["a"])], 0)`:     false,
		`x := is_object(input)`:                                                true,
		`x := input.process.args[_]`:                                           true,
		`x if { some m in input.mounts; m.type == "bind" }`:                    true,
		`x := [k | some k, _ in input.annotations; k != "` + requestKey + `"]`: false,
	} {
		p, err := LoadDir(writePolicyDir(t, map[string]string{"p.rego": "package bulwark.run\n\n" + rule + "\n"}))
		if err != nil {
			t.Fatalf("%s: %v", rule, err)
		}
		if got := annotationsUnread(p, []string{requestKey}); got != unread {
			t.Errorf("%s: unread %v, want %v", rule, got, unread)
		}
	}
	p, err := LoadDir(writePolicyDir(t, map[string]string{"p.rego": "package bulwark.run\n\nimport input.annotations\n\nx := annotations.other\n"}))
	if err != nil {
		t.Fatal(err)
	}
	if annotationsUnread(p, []string{requestKey}) {
		t.Error("an import of input was not a doubt")
	}
	p, err = LoadEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	if !annotationsUnread(p, []string{requestKey}) {
		t.Error("the default policy reads the request id (or the proof cannot tell)")
	}
}
