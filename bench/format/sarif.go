package format

import (
	"encoding/json"
	"io"
	"strings"

	"bulwark.dev/bulwark/bench"
)

// SARIFSchema is the SARIF 2.1.0 schema's URI, named in every log.
const SARIFSchema = "https://json.schemastore.org/sarif-2.1.0.json"

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool        sarifTool         `json:"tool"`
	Invocations []sarifInvocation `json:"invocations"`
	Results     []sarifResult     `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifRule struct {
	ID                   string         `json:"id"`
	Name                 string         `json:"name"`
	ShortDescription     sarifText      `json:"shortDescription"`
	FullDescription      sarifText      `json:"fullDescription"`
	Help                 sarifText      `json:"help"`
	DefaultConfiguration sarifConfig    `json:"defaultConfiguration"`
	Properties           map[string]any `json:"properties"`
}

type sarifConfig struct {
	Level string `json:"level"`
}

type sarifInvocation struct {
	ExecutionSuccessful bool   `json:"executionSuccessful"`
	EndTimeUTC          string `json:"endTimeUtc"`
}

type sarifResult struct {
	RuleID     string         `json:"ruleId"`
	RuleIndex  int            `json:"ruleIndex"`
	Kind       string         `json:"kind"`
	Level      string         `json:"level"`
	Message    sarifText      `json:"message"`
	Properties map[string]any `json:"properties,omitempty"`
}

// sarifKind maps a status to SARIF's result kind and level (§3.27.9, §3.27.10): only a failure
// is a "fail" with a level; everything else is "none".
func sarifKind(r bench.Result) (kind, level string) {
	switch r.Status {
	case bench.Pass:
		return "pass", "none"
	case bench.Fail:
		return "fail", "error"
	case bench.Warn:
		return "fail", "warning"
	case bench.Manual:
		return "review", "none"
	case bench.Skip:
		return "notApplicable", "none"
	}
	return "informational", "none"
}

// SARIF writes a SARIF 2.1.0 log: one rule per control, one result per control (pass and
// not-applicable included, so a consumer sees what was checked).
func SARIF(w io.Writer, rep *bench.Report) error {
	run := sarifRun{
		Tool:        sarifTool{Driver: sarifDriver{Name: "bulwark bench", InformationURI: "https://bulwark.dev/docs/bench"}},
		Invocations: []sarifInvocation{{ExecutionSuccessful: true, EndTimeUTC: rep.Time.Format("2006-01-02T15:04:05Z")}},
		Results:     []sarifResult{},
	}
	for i, r := range rep.Results {
		lvl := "error"
		if !r.Scored {
			lvl = "warning"
		}
		run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, sarifRule{
			ID: r.ID, Name: ruleName(r.Title), ShortDescription: sarifText{r.Title},
			FullDescription: sarifText{"Expected: " + r.Expected}, Help: sarifText{r.Remediation},
			DefaultConfiguration: sarifConfig{Level: lvl},
			Properties:           map[string]any{"section": r.Section, "level": r.Level, "scored": r.Scored, "cis": r.CIS},
		})
		kind, level := sarifKind(r)
		msg := string(r.Status) + ": " + r.Actual
		if d := detailText(r); r.Status == bench.Fail || r.Status == bench.Warn {
			msg += "\n" + d
		}
		res := sarifResult{RuleID: r.ID, RuleIndex: i, Kind: kind, Level: level, Message: sarifText{msg}}
		if len(r.Findings) > 0 {
			res.Properties = map[string]any{"findings": r.Findings}
		}
		run.Results = append(run.Results, res)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(sarifLog{Schema: SARIFSchema, Version: "2.1.0", Runs: []sarifRun{run}})
}

// ruleName turns a title into SARIF's PascalCase rule name.
func ruleName(title string) string {
	var b strings.Builder
	for _, w := range strings.FieldsFunc(title, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) {
		b.WriteString(strings.ToUpper(w[:1]) + w[1:])
	}
	return b.String()
}
