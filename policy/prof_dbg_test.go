package policy

import (
	"context"
	"fmt"
	"testing"

	"github.com/open-policy-agent/opa/v1/profiler"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

func TestProfDbg(t *testing.T) {
	p := tenantsPolicy(t, 1000)
	req := allowedRequest(t)
	req.Tenant = "tenant-0500"
	prof := profiler.New()
	var opts []func(*rego.Rego)
	for name, m := range p.Modules {
		if !isTestModule(name) {
			opts = append(opts, rego.ParsedModule(m))
		}
	}
	opts = append(opts, rego.Query(Query), rego.Store(inmem.NewFromObjectWithOpts(p.Data, inmem.OptReturnASTValuesOnRead(true))))
	pq, err := rego.New(opts...).PrepareForEval(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for range 500 {
		if _, err := pq.Eval(context.Background(), rego.EvalParsedInput(req.toValue()), rego.EvalQueryTracer(prof)); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range prof.ReportTopNResults(25, []string{"total_time_ns"}) {
		fmt.Printf("%2d %8dns %6d evals line %d: %s\n", i, s.ExprTimeNs/500, s.NumEval/500, s.Location.Row, string(s.Location.Text))
	}
}
