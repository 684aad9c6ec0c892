package format

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"

	"bulwark.dev/bulwark/bench"
)

// The JUnit XML shape CI systems read (the Ant/Jenkins "testsuites" schema).
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Errors    int         `xml:"errors,attr"`
	Skipped   int         `xml:"skipped,attr"`
	Timestamp string      `xml:"timestamp,attr"`
	Cases     []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// JUnit writes one test suite per section and one test case per control: a scored failure is a
// <failure>; skipped, manual and informational controls are <skipped> with the reason; a warning
// passes with its finding in <system-out>.
func JUnit(w io.Writer, rep *bench.Report) error {
	out := junitSuites{Name: "bulwark bench"}
	for _, sec := range rep.Sections {
		s := junitSuite{Name: sec.Title, Timestamp: rep.Time.Format("2006-01-02T15:04:05")}
		for _, r := range rep.Results {
			if r.Section != sec.ID {
				continue
			}
			c := junitCase{Name: r.ID + " " + r.Title, Classname: "bench." + r.Section}
			body := detailText(r)
			switch r.Status {
			case bench.Fail:
				c.Failure = &junitMessage{Message: r.Actual, Type: "FAIL", Text: body}
				s.Failures++
			case bench.Skip, bench.Manual, bench.Info:
				c.Skipped = &junitMessage{Message: string(r.Status) + ": " + r.Actual}
				s.Skipped++
			case bench.Warn:
				c.SystemOut = "WARN: " + r.Actual + "\n" + body
			default:
				c.SystemOut = r.Actual
			}
			s.Cases = append(s.Cases, c)
			s.Tests++
		}
		if s.Tests == 0 {
			continue
		}
		out.Tests += s.Tests
		out.Failures += s.Failures
		out.Skipped += s.Skipped
		out.Suites = append(out.Suites, s)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("junit: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// detailText is a result's details, its findings, what was expected and the fix.
func detailText(r bench.Result) string {
	var b strings.Builder
	for _, d := range r.Details {
		fmt.Fprintf(&b, "- %s\n", d)
	}
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "%s %s: %s\n", f.Status, f.Target, f.Actual)
		for _, d := range f.Details {
			fmt.Fprintf(&b, "  - %s\n", d)
		}
	}
	fmt.Fprintf(&b, "expected: %s\nfix: %s\n", r.Expected, r.Remediation)
	return b.String()
}
