package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/policy/document"
	"bulwark.dev/bulwark/sandbox"
)

// TestMarshalPlanIsJSONMarshal: a plan's bytes are json.Marshal's, its spec (from specjson) put
// where the rest's null was, also with quotes, HTML and specHole itself inside its strings and as
// a caller's annotation.
func TestMarshalPlanIsJSONMarshal(t *testing.T) {
	for _, file := range []string{"docker.json", "effective.json", "runc.json"} {
		data, err := os.ReadFile("../internal/specjson/testdata/" + file)
		if err != nil {
			t.Fatal(err)
		}
		for _, annotations := range []map[string]string{nil, {"effectiveSpec": "x"}, {specHole: specHole}} {
			var spec specs.Spec
			if err := json.Unmarshal(data, &spec); err != nil {
				t.Fatal(err)
			}
			spec.Process.Args = append(spec.Process.Args, specHole, `"effectiveSpec":null`, "<&>", "\u2028")
			p := &Plan{
				Request: &Request{Image: "img:1", Args: []string{specHole, `x"y`}, Annotations: annotations},
				ID:      "c1", Image: ImageRef{Reference: "img:1", Digest: "sha256:00", Layers: []string{"sha256:01"}},
				Spec:        &spec,
				Raises:      []sandbox.Raise{{Field: "process.noNewPrivileges", From: "false", To: "true"}},
				Decision:    document.Decision{Allow: true, Reasons: []document.Reason{{Code: "OK", Message: specHole}}, Revision: "r1"},
				InputDigest: "sha256:02", SeccompProfile: "default",
			}
			want, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			got, err := marshalPlan(p)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s, annotations %v: marshalPlan differs from json.Marshal:\n%s\n%s", file, annotations, got, want)
			}
			if p.Spec != &spec {
				t.Errorf("marshalPlan changed the plan's spec")
			}
		}
	}
}

// TestPlanFieldsArePlans: planFields has a Plan's JSON fields, in order, with the same tags and
// types (but the spec's), so that marshalPlan writes all of a plan.
func TestPlanFieldsArePlans(t *testing.T) {
	var want, got []string
	for _, f := range reflect.VisibleFields(reflect.TypeFor[Plan]()) {
		if f.IsExported() && f.Tag.Get("json") != "-" {
			want = append(want, fmt.Sprintf("%s %s %s", f.Name, f.Type, f.Tag))
		}
	}
	for _, f := range reflect.VisibleFields(reflect.TypeFor[planFields]()) {
		typ := f.Type.String()
		if f.Name == "Spec" {
			typ = reflect.TypeFor[*specs.Spec]().String()
		}
		got = append(got, fmt.Sprintf("%s %s %s", f.Name, typ, f.Tag))
	}
	if !slices.Equal(got, want) {
		t.Errorf("planFields:\n%s\nPlan:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
