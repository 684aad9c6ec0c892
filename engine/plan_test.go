package engine

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand"
	"os"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/internal/jsontext/encodertest"
	"bulwark.dev/bulwark/policy/document"
	"bulwark.dev/bulwark/sandbox"
)

// TestMarshalPlanIsJSONMarshal: a plan's bytes are json.Marshal's, with the spec of each of
// specjson's test documents, quotes and HTML in its strings.
func TestMarshalPlanIsJSONMarshal(t *testing.T) {
	for _, file := range []string{"docker.json", "effective.json", "runc.json"} {
		data, err := os.ReadFile("../internal/specjson/testdata/" + file)
		if err != nil {
			t.Fatal(err)
		}
		for _, annotations := range []map[string]string{nil, {"effectiveSpec": "x"}, {"<a>": `"&"`}} {
			var spec specs.Spec
			if err := json.Unmarshal(data, &spec); err != nil {
				t.Fatal(err)
			}
			spec.Process.Args = append(spec.Process.Args, `"effectiveSpec":null`, "<&>", "\u2028")
			p := &Plan{
				Request: &Request{Image: "img:1", Args: []string{`x"y`}, Annotations: annotations, CPUs: 1.5},
				ID:      "c1", Image: ImageRef{Reference: "img:1", Digest: "sha256:00", Layers: []string{"sha256:01"}},
				Spec:        &spec,
				Raises:      []sandbox.Raise{{Field: "process.noNewPrivileges", From: "false", To: "true"}},
				Decision:    document.Decision{Allow: true, Reasons: []document.Reason{{Code: "OK", Message: "<ok>"}}, Revision: "r1"},
				InputDigest: "sha256:02", SeccompProfile: "default",
			}
			checkPlanJSON(t, p)
			if p.Spec != &spec {
				t.Errorf("marshalPlan changed the plan's spec")
			}
		}
	}
}

// TestPlanJSONIsEncodingJSON: the hand-written encoder writes exactly what encoding/json writes
// for a plan — the zero plan and 3,000 random ones, every field under Plan but the spec (a field
// added later is filled too, and fails the test until marshalPlan writes it) with empty and set
// values, strings of any bytes and runes, floats of every magnitude. A float encoding/json
// cannot write is an error for both.
func TestPlanJSONIsEncodingJSON(t *testing.T) {
	rnd := rand.New(rand.NewSource(1))
	checkPlanJSON(t, &Plan{})
	for i := 0; i < 3000; i++ {
		p := &Plan{}
		v := reflect.ValueOf(p).Elem()
		for j := 0; j < v.NumField(); j++ {
			// The spec is specjson's (its own test); Stdin is not encoded.
			if f := v.Type().Field(j); f.IsExported() && f.Name != "Spec" && f.Name != "Stdin" {
				encodertest.Fill(t, rnd, v.Field(j))
			}
		}
		checkPlanJSON(t, p)
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if _, err := marshalPlan(&Plan{Request: &Request{CPUs: f}}); err == nil {
			t.Errorf("cpus %v encoded", f)
		}
	}
}

func checkPlanJSON(t *testing.T, p *Plan) {
	t.Helper()
	want, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := marshalPlan(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("marshalPlan:\n%s\nencoding/json:\n%s", got, want)
	}
}
