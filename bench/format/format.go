// Package format writes a bench report as colour or plain text, JSON (its schema is
// report.schema.json beside this file), JUnit XML and SARIF 2.1.0.
package format

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"bulwark.dev/bulwark/bench"
)

// Names are the formats Write knows.
var Names = []string{"text", "json", "junit", "sarif"}

// Write writes rep in format; colour applies to text only.
func Write(w io.Writer, rep *bench.Report, format string, colour bool) error {
	switch format {
	case "text":
		return Text(w, rep, colour)
	case "json":
		return JSON(w, rep)
	case "junit":
		return JUnit(w, rep)
	case "sarif":
		return SARIF(w, rep)
	}
	return fmt.Errorf("unknown format %q (want %s)", format, strings.Join(Names, ", "))
}

// JSON writes the report as one indented JSON document.
func JSON(w io.Writer, rep *bench.Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

var colours = map[bench.Status]string{
	bench.Pass: "\033[32m", bench.Fail: "\033[31m", bench.Warn: "\033[33m",
	bench.Info: "\033[34m", bench.Manual: "\033[36m", bench.Skip: "\033[90m",
}

// Text writes one line per control (and one per container finding or detail), section by
// section, then the summary line.
func Text(w io.Writer, rep *bench.Report, colour bool) error {
	tag := func(s bench.Status) string {
		t := fmt.Sprintf("[%-6s]", s)
		if colour {
			return colours[s] + t + "\033[0m"
		}
		return t
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# bulwark bench — %s — targets %s — %s\n", rep.Benchmark, strings.Join(rep.Targets, ","), rep.Time.Format("2006-01-02T15:04:05Z"))
	if rep.Euid != 0 {
		b.WriteString("# not root: controls that need root are skipped\n")
	}
	for _, sec := range rep.Sections {
		first := true
		for _, r := range rep.Results {
			if r.Section != sec.ID {
				continue
			}
			if first {
				fmt.Fprintf(&b, "\n%s\n", sec.Title)
				first = false
			}
			scored := ""
			if !r.Scored {
				scored = " (not scored)"
			}
			fmt.Fprintf(&b, "%s %-7s %s%s\n", tag(r.Status), r.ID, r.Title, scored)
			if r.Actual != "" {
				fmt.Fprintf(&b, "         %s\n", r.Actual)
			}
			for _, f := range r.Findings {
				fmt.Fprintf(&b, "         %s %s: %s\n", tag(f.Status), f.Target, f.Actual)
				for _, d := range f.Details {
					fmt.Fprintf(&b, "             - %s\n", d)
				}
			}
			if r.Status == bench.Fail || r.Status == bench.Warn {
				for _, d := range r.Details {
					fmt.Fprintf(&b, "         - %s\n", d)
				}
				fmt.Fprintf(&b, "         expected: %s\n         fix: %s\n", r.Expected, r.Remediation)
			}
		}
	}
	fmt.Fprintf(&b, "\n%s\n", SummaryLine(rep))
	_, err := io.WriteString(w, b.String())
	return err
}

// SummaryLine is the one-line summary: counts and the score.
func SummaryLine(rep *bench.Report) string {
	s := rep.Summary
	return fmt.Sprintf("Summary: %d pass, %d fail, %d warn, %d info, %d manual, %d skip; score %d (%d scored controls, %.1f%% pass)",
		s.Pass, s.Fail, s.Warn, s.Info, s.Manual, s.Skip, s.Score, s.Scored, s.Percent)
}

// ReportSchema is the JSON schema of the JSON format (report.schema.json).
//
//go:embed report.schema.json
var ReportSchema []byte
