// Package bench is Bulwark's compliance scanner (`bulwark bench`): it checks the host, the
// engine's configuration and files under the state root, its images and trust metadata, and
// every running container as the kernel shows it (/proc), against controls kept as data
// (controls.json) that map to the CIS Docker Benchmark. It compares running containers with the
// floor's exported expected values (sandbox.FloorExpected), never a copy of them, and it only
// reads: nothing on the host is changed by a scan.
package bench

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"
)

// Status is a control's (or one container's) result.
type Status string

// The statuses. Fail counts against the score only for a scored control; an unscored control
// that does not pass is reported as Warn.
const (
	Pass   Status = "PASS"
	Fail   Status = "FAIL"
	Warn   Status = "WARN"
	Info   Status = "INFO"
	Manual Status = "MANUAL"
	Skip   Status = "SKIP"
)

// Outcome is what a probe found.
type Outcome struct {
	Status Status
	// Actual is the value found, in a few words ("mode 0622", "CapEff CAP_SYS_ADMIN").
	Actual  string
	Details []string
}

func pass(format string, a ...any) Outcome {
	return Outcome{Status: Pass, Actual: fmt.Sprintf(format, a...)}
}
func fail(format string, a ...any) Outcome {
	return Outcome{Status: Fail, Actual: fmt.Sprintf(format, a...)}
}
func info(format string, a ...any) Outcome {
	return Outcome{Status: Info, Actual: fmt.Sprintf(format, a...)}
}
func skip(format string, a ...any) Outcome {
	return Outcome{Status: Skip, Actual: fmt.Sprintf(format, a...)}
}

// errOutcome reports a probe that could not read what it needs: the control fails (closed),
// except that a permission error of a non-root scan is a skip naming the need for root.
func (e *Env) errOutcome(c *Control, err error) Outcome {
	if os.IsPermission(err) && e.Euid != 0 {
		return skip("needs root: %v", err)
	}
	return fail("cannot check: %v", err)
}

// Finding is one container's result for a runtime control.
type Finding struct {
	Target  string   `json:"target"`
	Status  Status   `json:"status"`
	Actual  string   `json:"actual,omitempty"`
	Details []string `json:"details,omitempty"`
}

// Result is one control's result.
type Result struct {
	ID          string              `json:"id"`
	Title       string              `json:"title"`
	Section     string              `json:"section"`
	Level       int                 `json:"level"`
	Type        string              `json:"type"`
	Scored      bool                `json:"scored"`
	Status      Status              `json:"status"`
	Expected    string              `json:"expected"`
	Actual      string              `json:"actual,omitempty"`
	Details     []string            `json:"details,omitempty"`
	Findings    []Finding           `json:"findings,omitempty"`
	Remediation string              `json:"remediation"`
	References  []string            `json:"references,omitempty"`
	CIS         map[string][]string `json:"cis,omitempty"`
	NeedsRoot   bool                `json:"needsRoot,omitempty"`
}

// Summary counts the results. Score is the scored controls passed minus those failed (as the
// CIS scanners count it); Percent is passed over passed plus failed.
type Summary struct {
	Pass    int     `json:"pass"`
	Fail    int     `json:"fail"`
	Warn    int     `json:"warn"`
	Info    int     `json:"info"`
	Manual  int     `json:"manual"`
	Skip    int     `json:"skip"`
	Scored  int     `json:"scored"`
	Score   int     `json:"score"`
	Percent float64 `json:"percent"`
}

// Report is a whole scan.
type Report struct {
	Schema    string    `json:"$schema"`
	Tool      string    `json:"tool"`
	Time      time.Time `json:"time"`
	Root      string    `json:"stateRoot,omitempty"`
	Targets   []string  `json:"targets"`
	Euid      int       `json:"euid"`
	Benchmark string    `json:"benchmark"`
	Sections  []Section `json:"sections"`
	// Containers are the running containers the runtime section scanned.
	Containers []string `json:"containers"`
	Results    []Result `json:"results"`
	Summary    Summary  `json:"summary"`
}

// SchemaID identifies the report's JSON schema (bench/format/report.schema.json).
const SchemaID = "https://bulwark.dev/schemas/bench-report/v1.json"

// Failed reports whether a scored control failed.
func (r *Report) Failed() bool { return r.Summary.Fail > 0 }

// Target names.
const (
	TargetBulwark = "bulwark"
	TargetDocker  = "docker"
	TargetRunc    = "runc"
)

// Options configure a scan.
type Options struct {
	// Root is Bulwark's state root; RunRoot its per-run state (bulwark --run-root; empty: the
	// default, internal/runroot).
	Root, RunRoot string
	// Proc, Sys and Etc are where the host's /proc, /sys and /etc are (tests use fixtures).
	Proc, Sys, Etc string
	// Targets are the container sources whose running containers the runtime section scans:
	// TargetBulwark (the state root's), TargetDocker (DockerSocket), TargetRunc (RuncRoot).
	// The Bulwark-only sections run with TargetBulwark.
	Targets      []string
	DockerSocket string
	RuncRoot     string
	// DaemonSocket is bulwarkd's socket; absent, its control is skipped.
	DaemonSocket string
	// Policy is the policy the engine is run with (as 'bulwark run' takes it).
	Policy PolicyConfig
	// Check and Exclude select controls by id or section (Check empty: all).
	Check, Exclude []string
	// Executable is the bulwark binary whose ownership and mode are checked.
	Executable string
	Now        func() time.Time
}

// PolicyConfig is where the engine's policy comes from.
type PolicyConfig struct {
	Bundle, KeyFile, Dir string
}

// Run scans and returns the report. It fails only when the scan itself cannot run (a bad
// option, the catalog); everything a control cannot read is that control's result.
func Run(ctx context.Context, o Options) (*Report, error) {
	cat, err := LoadCatalog()
	if err != nil {
		return nil, err
	}
	if err := cat.checkSelection(append(slices.Clone(o.Check), o.Exclude...)); err != nil {
		return nil, err
	}
	env, err := newEnv(ctx, o)
	if err != nil {
		return nil, err
	}
	rep := &Report{
		Schema: SchemaID, Tool: "bulwark bench", Time: env.Now.UTC(), Root: o.Root, Targets: env.Targets,
		Euid: env.Euid, Benchmark: benchmarkNames(cat), Sections: cat.Sections,
	}
	rep.Containers = []string{}
	for _, c := range env.Containers {
		rep.Containers = append(rep.Containers, c.Name)
	}
	for i := range cat.Controls {
		c := &cat.Controls[i]
		sec, _ := cat.Section(c.Section)
		if !selected(c, o.Check, o.Exclude) || sec.Bulwark && !slices.Contains(env.Targets, TargetBulwark) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rep.Results = append(rep.Results, env.evaluate(c))
	}
	rep.Summary = summarize(rep.Results)
	return rep, nil
}

func benchmarkNames(cat *Catalog) string {
	var s []string
	for _, b := range cat.Benchmarks {
		s = append(s, b.Name+" "+b.Version)
	}
	return strings.Join(s, ", ")
}

// checkSelection refuses a --check or --exclude entry that names no control and no section: a
// misspelt id must not silently select nothing, or exclude nothing.
func (c *Catalog) checkSelection(names []string) error {
	for _, n := range names {
		known := slices.ContainsFunc(c.Controls, func(x Control) bool { return strings.EqualFold(x.ID, n) }) ||
			slices.ContainsFunc(c.Sections, func(x Section) bool { return strings.EqualFold(x.ID, n) })
		if !known {
			return fmt.Errorf("bench: %q is neither a control id nor a section (host, engine, files, images, runtime, operations)", n)
		}
	}
	return nil
}

// selected applies --check and --exclude (ids or sections).
func selected(c *Control, check, exclude []string) bool {
	match := func(list []string) bool {
		return slices.ContainsFunc(list, func(s string) bool { return strings.EqualFold(s, c.ID) || strings.EqualFold(s, c.Section) })
	}
	return (len(check) == 0 || match(check)) && !match(exclude)
}

// evaluate runs c's probe and turns the outcome into a result.
func (e *Env) evaluate(c *Control) Result {
	r := Result{
		ID: c.ID, Title: c.Title, Section: c.Section, Level: c.Level, Type: c.Type, Scored: c.Scored(),
		Expected: c.Expected, Remediation: c.Remediation, References: c.References, CIS: c.CIS, NeedsRoot: c.NeedsRoot,
	}
	var o Outcome
	switch {
	case c.Probe == "":
		o = Outcome{Status: Manual, Actual: "to be reviewed by a person"}
	case c.NeedsRoot && e.Euid != 0:
		o = skip("needs root")
	case hostProbes[c.Probe] != nil:
		o = hostProbes[c.Probe](e, c)
	default:
		o, r.Findings = e.eachContainer(c, containerProbes[c.Probe])
	}
	if c.Type == "manual" && o.Status != Skip {
		o.Status = Manual
	}
	if !c.Scored() && o.Status == Fail {
		o.Status = Warn
	}
	r.Status, r.Actual, r.Details = o.Status, o.Actual, o.Details
	return r
}

// eachContainer runs a container probe on every running container: the control fails if one
// fails, passes if all pass, and is skipped when no container runs.
func (e *Env) eachContainer(c *Control, p containerProbe) (Outcome, []Finding) {
	if len(e.Containers) == 0 {
		return skip("no running containers"), nil
	}
	var out []Finding
	counts := map[Status]int{}
	for i := range e.Containers {
		ct := &e.Containers[i]
		o := p(e, c, ct)
		out = append(out, Finding{Target: ct.Name, Status: o.Status, Actual: o.Actual, Details: o.Details})
		counts[o.Status]++
	}
	// A container that could not be read (a skip) never lets the control pass for it.
	switch {
	case counts[Fail] > 0:
		return fail("%d of %d containers fail", counts[Fail], len(out)), out
	case counts[Pass] == len(out):
		return pass("%d containers", counts[Pass]), out
	case counts[Skip] == len(out):
		return skip("%s", out[0].Actual), out
	}
	return info("%d containers: %d pass, %d skipped, %d reported", len(out), counts[Pass], counts[Skip], counts[Info]), out
}

func summarize(rs []Result) Summary {
	var s Summary
	for _, r := range rs {
		switch r.Status {
		case Pass:
			s.Pass++
		case Fail:
			s.Fail++
		case Warn:
			s.Warn++
		case Info:
			s.Info++
		case Manual:
			s.Manual++
		case Skip:
			s.Skip++
		}
		if r.Scored && (r.Status == Pass || r.Status == Fail) {
			s.Scored++
			if r.Status == Pass {
				s.Score++
			} else {
				s.Score--
			}
		}
	}
	if s.Scored > 0 {
		passed := (s.Scored + s.Score) / 2
		s.Percent = math.Round(1000*float64(passed)/float64(s.Scored)) / 10
	}
	return s
}
