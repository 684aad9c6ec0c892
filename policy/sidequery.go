package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// sideQuery is another query of the same compiled policy than the run decision (storage.go,
// quota.go): decided apart from runs, prepared once on first use, evaluated many times.
type sideQuery struct {
	once sync.Once
	pq   rego.PreparedEvalQuery // set once by once
	err  error                  // set once by once
}

// evalSide decides doc (a request document, encoded as JSON) against query: the decision's
// allow and reasons, and its whole object for the query's own fields (nil on a failure). Like
// Decide it never errors: an unprepared query, an evaluation error or an undefined or malformed
// result is a deny with the reason.
func (e *Engine) evalSide(ctx context.Context, q *sideQuery, query string, doc any) (Decision, ast.Object) {
	q.once.Do(func() {
		q.pq, q.err = rego.New(append([]func(*rego.Rego){
			rego.Query(query), rego.Compiler(e.compiler),
		}, e.common...)...).PrepareForEval(ctx)
	})
	fail := func(code string, err error) (Decision, ast.Object) {
		return Decision{Reasons: []Reason{{Code: code, Message: err.Error()}}}, nil
	}
	if q.err != nil {
		return fail(CodePolicyError, fmt.Errorf("prepare %s: %w", query, q.err))
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return fail(CodeRequestInvalid, err)
	}
	var input map[string]any
	if err := json.Unmarshal(b, &input); err != nil {
		return fail(CodeRequestInvalid, err)
	}
	rs, err := q.pq.Eval(ctx, rego.EvalInput(input), rego.EvalGenerateJSON(keepTerm))
	if err != nil {
		return fail(CodePolicyError, fmt.Errorf("policy evaluation failed: %w", err))
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return fail(CodePolicyUndefined, fmt.Errorf("policy left %s undefined", query))
	}
	d, err := parseDecision(rs[0].Expressions[0].Value)
	if err != nil {
		return fail(CodePolicyError, fmt.Errorf("%s: %w", query, err))
	}
	return d, rs[0].Expressions[0].Value.(*ast.Term).Value.(ast.Object)
}
