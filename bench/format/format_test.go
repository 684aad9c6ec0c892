package format

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"strings"
	"testing"
	"time"

	"bulwark.dev/bulwark/bench"
	"bulwark.dev/bulwark/internal/jsonschema"
)

// sample is a report with every status, a scored failure with findings and an unscored warning.
func sample() *bench.Report {
	return &bench.Report{
		Schema: bench.SchemaID, Tool: "bulwark bench", Time: time.Date(2026, 12, 6, 23, 0, 0, 0, time.UTC),
		Root: "/var/lib/bulwark", Targets: []string{"bulwark", "runc"}, Benchmark: "CIS Docker Benchmark 1.6.0",
		Sections:   []bench.Section{{ID: "host", Title: "1 Host"}, {ID: "runtime", Title: "5 Runtime"}},
		Containers: []string{"bulwark:c1", "runc:weak"},
		Results: []bench.Result{
			{ID: "BW-1.1", Title: "State root <separate> & \"quoted\"", Section: "host", Level: 1, Type: "automated", Scored: true, Status: bench.Pass, Expected: "e", Remediation: "r", Actual: "ok", CIS: map[string][]string{"1.6.0": {"1.1.1"}}},
			{ID: "BW-1.7", Title: "Audit rules", Section: "host", Level: 2, Type: "automated", Status: bench.Warn, Expected: "e", Remediation: "r", Actual: "none"},
			{ID: "BW-1.8", Title: "Hardened", Section: "host", Level: 1, Type: "manual", Status: bench.Manual, Expected: "e", Remediation: "r"},
			{ID: "BW-5.4", Title: "Caps", Section: "runtime", Level: 1, Type: "automated", Scored: true, Status: bench.Fail, Expected: "e", Remediation: "r", Actual: "1 of 2 containers fail", NeedsRoot: true,
				Findings: []bench.Finding{{Target: "bulwark:c1", Status: bench.Pass, Actual: "CapEff 4fb"}, {Target: "runc:weak", Status: bench.Fail, Actual: "CapEff", Details: []string{"CAP_SYS_ADMIN (forbidden)"}}}},
			{ID: "BW-5.16", Title: "MAC", Section: "runtime", Level: 1, Type: "automated", Scored: true, Status: bench.Info, Expected: "e", Remediation: "r"},
			{ID: "BW-5.1", Title: "Skip", Section: "runtime", Level: 1, Type: "automated", Scored: true, Status: bench.Skip, Expected: "e", Remediation: "r"},
		},
		Summary: bench.Summary{Pass: 1, Fail: 1, Warn: 1, Info: 1, Manual: 1, Skip: 1, Scored: 2, Score: 0, Percent: 50},
	}
}

func TestJSONValidatesAgainstItsSchema(t *testing.T) {
	schema, err := jsonschema.Compile(ReportSchema)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := JSON(&buf, sample()); err != nil {
		t.Fatal(err)
	}
	if err := schema.ValidateJSON(buf.Bytes()); err != nil {
		t.Fatalf("report does not validate: %v", err)
	}
	// The schema is not vacuous: a status outside the enum, or a field it does not know, is refused.
	for _, bad := range []string{
		strings.Replace(buf.String(), `"status": "FAIL"`, `"status": "BROKEN"`, 1),
		strings.Replace(buf.String(), `"euid": 0`, `"euid": 0, "extra": 1`, 1),
	} {
		if schema.ValidateJSON([]byte(bad)) == nil {
			t.Fatalf("an invalid report validated:\n%.300s", bad)
		}
	}
}

func TestJUnitParses(t *testing.T) {
	var buf bytes.Buffer
	if err := JUnit(&buf, sample()); err != nil {
		t.Fatal(err)
	}
	var got junitSuites
	if err := xml.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("not XML: %v\n%s", err, buf.String())
	}
	if got.Tests != 6 || got.Failures != 1 || got.Skipped != 3 || len(got.Suites) != 2 {
		t.Fatalf("tests %d failures %d skipped %d suites %d", got.Tests, got.Failures, got.Skipped, len(got.Suites))
	}
	f := got.Suites[1].Cases[0].Failure
	if f == nil || !strings.Contains(f.Text, "CAP_SYS_ADMIN") {
		t.Fatalf("failure: %+v", f)
	}
}

// TestSARIFValidates validates the log against the SARIF 2.1.0 schema's definitions of every
// object bench writes (testdata/sarif-2.1.0-subset.schema.json, transcribed from the official
// schema, whose URL is not reachable from this machine), then checks what the schema cannot say:
// each ruleIndex points at its rule, and level is "none" unless kind is "fail" (SARIF §3.27.10).
func TestSARIFValidates(t *testing.T) {
	raw, err := os.ReadFile("testdata/sarif-2.1.0-subset.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	schema, err := jsonschema.Compile(raw)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := SARIF(&buf, sample()); err != nil {
		t.Fatal(err)
	}
	if err := schema.ValidateJSON(buf.Bytes()); err != nil {
		t.Fatalf("SARIF does not validate: %v\n%s", err, buf.String())
	}
	var log sarifLog
	if err := json.Unmarshal(buf.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	run := log.Runs[0]
	if len(run.Results) != 6 || len(run.Tool.Driver.Rules) != 6 {
		t.Fatalf("%d results, %d rules", len(run.Results), len(run.Tool.Driver.Rules))
	}
	for _, res := range run.Results {
		if run.Tool.Driver.Rules[res.RuleIndex].ID != res.RuleID {
			t.Errorf("ruleIndex %d is not rule %s", res.RuleIndex, res.RuleID)
		}
		if res.Kind != "fail" && res.Level != "none" || res.Message.Text == "" {
			t.Errorf("%s: kind %q level %q message %q", res.RuleID, res.Kind, res.Level, res.Message.Text)
		}
	}
	// The schema is not vacuous: a level outside its enumeration is refused.
	bad := strings.Replace(buf.String(), `"level": "error"`, `"level": "critical"`, 1)
	if schema.ValidateJSON([]byte(bad)) == nil {
		t.Fatal("a level outside the enumeration validated")
	}
}

func TestTextColourAndSummary(t *testing.T) {
	var plain, colour bytes.Buffer
	if err := Text(&plain, sample(), false); err != nil {
		t.Fatal(err)
	}
	if err := Text(&colour, sample(), true); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "\033[") || !strings.Contains(colour.String(), "\033[31m[FAIL  ]") {
		t.Fatal("colour on plain output or none on the terminal one")
	}
	if !strings.Contains(plain.String(), "Summary: 1 pass, 1 fail, 1 warn, 1 info, 1 manual, 1 skip; score 0 (2 scored controls, 50.0% pass)") {
		t.Fatalf("summary line:\n%s", plain.String())
	}
	if err := Write(&plain, sample(), "yaml", false); err == nil {
		t.Fatal("unknown format accepted")
	}
}
