package format

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
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

// TestSARIFShape checks what the SARIF 2.1.0 schema requires of the parts bench writes (the
// official schema file is not reachable from this machine): version "2.1.0" and runs; a run's
// tool.driver.name; a rule's id; a result's message.text, a ruleIndex pointing at its rule, and
// kind/level from the schema's enumerations, with level "none" unless kind is "fail".
func TestSARIFShape(t *testing.T) {
	var buf bytes.Buffer
	if err := SARIF(&buf, sample()); err != nil {
		t.Fatal(err)
	}
	var log map[string]any
	if err := json.Unmarshal(buf.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	if log["version"] != "2.1.0" || log["$schema"] != SARIFSchema {
		t.Fatalf("version %v schema %v", log["version"], log["$schema"])
	}
	runs := log["runs"].([]any)
	run := runs[0].(map[string]any)
	driver := run["tool"].(map[string]any)["driver"].(map[string]any)
	if driver["name"] == "" {
		t.Fatal("no driver name")
	}
	rules := driver["rules"].([]any)
	kinds := map[string]bool{"notApplicable": true, "pass": true, "fail": true, "review": true, "open": true, "informational": true}
	levels := map[string]bool{"none": true, "note": true, "warning": true, "error": true}
	for _, r := range run["results"].([]any) {
		res := r.(map[string]any)
		msg, _ := res["message"].(map[string]any)
		if msg == nil || msg["text"] == "" {
			t.Errorf("result without message.text: %v", res)
		}
		idx := int(res["ruleIndex"].(float64))
		if rules[idx].(map[string]any)["id"] != res["ruleId"] {
			t.Errorf("ruleIndex %d is not rule %v", idx, res["ruleId"])
		}
		kind, level := res["kind"].(string), res["level"].(string)
		if !kinds[kind] || !levels[level] || kind != "fail" && level != "none" {
			t.Errorf("%v: kind %q level %q", res["ruleId"], kind, level)
		}
	}
	if n := len(run["results"].([]any)); n != 6 {
		t.Fatalf("%d results", n)
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
