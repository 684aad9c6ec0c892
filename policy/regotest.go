package policy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
)

// TestResult is the outcome of one Rego unit test (a rule named test_*).
type TestResult struct {
	Package  string        `json:"package"`
	Name     string        `json:"name"`
	Location string        `json:"location"`
	Pass     bool          `json:"pass"`
	Skip     bool          `json:"skip,omitempty"`
	Error    string        `json:"error,omitempty"`
	Duration time.Duration `json:"durationNs"`
}

// RunTests runs the Rego unit tests in p's modules (see LoadForTests) against p's data, like
// `opa test`.
// Results are sorted by package and name. A policy that fails to compile is an error.
func RunTests(ctx context.Context, p *Policy) ([]TestResult, error) {
	store := inmem.NewFromObjectWithOpts(p.Data, inmem.OptRoundTripOnWrite(true))
	ch, err := tester.NewRunner().SetStore(store).SetModules(p.Modules).RunTests(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("run policy tests: %w", err)
	}
	var out []TestResult
	for r := range ch {
		tr := TestResult{
			Package:  strings.TrimPrefix(r.Package, "data."),
			Name:     r.Name,
			Pass:     r.Pass(),
			Skip:     r.Skip,
			Duration: r.Duration,
		}
		if r.Location != nil {
			tr.Location = r.Location.String()
		}
		switch {
		case r.Error != nil:
			tr.Error = r.Error.Error()
		case r.Fail:
			tr.Error = "test rule was false or undefined"
		}
		out = append(out, tr)
	}
	slices.SortFunc(out, func(a, b TestResult) int {
		return strings.Compare(a.Package+"."+a.Name, b.Package+"."+b.Name)
	})
	return out, nil
}
