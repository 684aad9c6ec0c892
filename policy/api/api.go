// Package api decides every call to bulwarkd's API: a second Rego package (data.bulwark.api,
// api.rego here) beside the run policy, evaluated on who calls (the tenant the daemon mapped the
// connection to, and whether it is an operator), what operation, and on which object and its
// owner. Prepared once, evaluated per call; an undefined, erroring or malformed result denies.
package api

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"bulwark.dev/bulwark/policy"
)

// Query is the document an API policy must define.
const Query = "data.bulwark.api.decision"

// Reason codes the daemon itself gives when the policy cannot answer.
const (
	CodePolicyError     = "API_POLICY_ERROR"
	CodePolicyUndefined = "API_POLICY_UNDEFINED"
)

//go:embed api.rego
var defaultFS embed.FS

// Target is the object an operation acts on.
type Target struct {
	Kind  string `json:"kind"`
	ID    string `json:"id,omitempty"`
	Owner string `json:"owner,omitempty"`
}

// Input is one call: the caller as the connection says (never as the client says), the
// operation and its target.
type Input struct {
	Tenant    string  `json:"tenant"`
	Operator  bool    `json:"operator"`
	UID       int     `json:"uid"`
	GID       int     `json:"gid"`
	Operation string  `json:"operation"`
	Target    *Target `json:"target,omitempty"`
}

// Decision is the policy's answer.
type Decision struct {
	Allow    bool            `json:"allow"`
	Reasons  []policy.Reason `json:"reasons"`
	Duration time.Duration   `json:"durationNs"`
}

// Codes lists the reasons' codes.
func (d Decision) Codes() []string {
	out := make([]string, 0, len(d.Reasons))
	for _, r := range d.Reasons {
		out = append(out, r.Code)
	}
	return out
}

// Message is the reasons in one line: "CODE: message; CODE: message".
func (d Decision) Message() string {
	parts := make([]string, 0, len(d.Reasons))
	for _, r := range d.Reasons {
		parts = append(parts, r.Code+": "+r.Message)
	}
	return strings.Join(parts, "; ")
}

// Authorizer holds the prepared API policy; it is safe for concurrent use, and Replace swaps in
// a newly prepared policy (a reload) without stopping decisions.
type Authorizer struct {
	pq atomic.Pointer[rego.PreparedEvalQuery]
	// Source says where the rules came from ("embedded" or the directory).
	Source string
}

// New prepares the API policy: the embedded rules, or an operator's directory (its .rego
// modules, or only a data.json for the embedded rules, e.g. data.bulwark.api_tenants).
func New(ctx context.Context, dir string) (*Authorizer, error) {
	p, src, err := load(dir)
	if err != nil {
		return nil, err
	}
	opts := []func(*rego.Rego){
		rego.Query(Query),
		rego.SetRegoVersion(ast.RegoV1),
		rego.Store(inmem.NewFromObject(p.Data)),
		rego.StrictBuiltinErrors(true),
	}
	for _, m := range p.Modules {
		opts = append(opts, rego.ParsedModule(m))
	}
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("prepare API policy (%s): %w", src, err)
	}
	a := &Authorizer{Source: src}
	a.pq.Store(&pq)
	return a, nil
}

// Replace makes a decide with b's policy from now on (b is prepared from the same source: the
// daemon's reload).
func (a *Authorizer) Replace(b *Authorizer) { a.pq.Store(b.pq.Load()) }

// Load reads the API policy's modules and data (tests included, for policy.RunTests).
func Load(dir string, withTests bool) (*policy.Policy, error) {
	p, _, err := loadModules(dir, withTests)
	return p, err
}

func load(dir string) (*policy.Policy, string, error) { return loadModules(dir, false) }

func loadModules(dir string, withTests bool) (*policy.Policy, string, error) {
	def, err := loadFS(defaultFS, ".", withTests)
	if err != nil {
		return nil, "", fmt.Errorf("embedded API policy: %w", err)
	}
	if dir == "" {
		return def, "embedded", nil
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, "", fmt.Errorf("API policy directory: %w", err)
	}
	p, err := loadFS(nil, dir, withTests)
	if err != nil {
		return nil, "", fmt.Errorf("API policy directory %s: %w", dir, err)
	}
	if len(p.Modules) == 0 {
		p.Modules = def.Modules
	}
	return p, dir, nil
}

func loadFS(fsys fs.FS, path string, withTests bool) (*policy.Policy, error) {
	l := loader.NewFileLoader().WithRegoVersion(ast.RegoV1)
	if fsys != nil {
		l = l.WithFS(fsys)
	}
	res, err := l.Filtered([]string{path}, func(_ string, info fs.FileInfo, _ int) bool {
		return !info.IsDir() && !withTests && strings.HasSuffix(info.Name(), "_test.rego")
	})
	if err != nil {
		return nil, err
	}
	p := &policy.Policy{Modules: map[string]*ast.Module{}, Data: res.Documents}
	for name, m := range res.Modules {
		p.Modules[name] = m.Parsed
	}
	if p.Data == nil {
		p.Data = map[string]any{}
	}
	return p, nil
}

// Decide evaluates one call. It never fails: a policy that errs or says nothing denies, with
// the reason.
func (a *Authorizer) Decide(ctx context.Context, in Input) Decision {
	start := time.Now()
	d := a.decide(ctx, in)
	d.Duration = time.Since(start)
	return d
}

func (a *Authorizer) decide(ctx context.Context, in Input) Decision {
	doc := map[string]any{
		"tenant": in.Tenant, "operator": in.Operator, "uid": in.UID, "gid": in.GID, "operation": in.Operation,
	}
	if in.Target != nil {
		doc["target"] = map[string]any{"kind": in.Target.Kind, "id": in.Target.ID, "owner": in.Target.Owner}
	}
	rs, err := a.pq.Load().Eval(ctx, rego.EvalInput(doc))
	if err != nil {
		return refuse(CodePolicyError, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return refuse(CodePolicyUndefined, fmt.Errorf("the API policy left %s undefined", Query))
	}
	d, err := parse(rs[0].Expressions[0].Value)
	if err != nil {
		return refuse(CodePolicyError, err)
	}
	return d
}

func refuse(code string, err error) Decision {
	return Decision{Reasons: []policy.Reason{{Code: code, Message: err.Error()}}}
}

// parse reads {"allow": bool, "reasons": [...]}; anything else is malformed. An allow with
// reasons is a contradiction and denies.
func parse(v any) (Decision, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return Decision{}, fmt.Errorf("API decision is %T, not an object", v)
	}
	allow, ok := m["allow"].(bool)
	if !ok {
		return Decision{}, errors.New("API decision has no boolean allow")
	}
	list, _ := m["reasons"].([]any)
	var d Decision
	for _, x := range list {
		r, _ := x.(map[string]any)
		code, _ := r["code"].(string)
		msg, _ := r["message"].(string)
		path, _ := r["path"].(string)
		if code == "" {
			return Decision{}, errors.New("API decision has a reason without a code")
		}
		d.Reasons = append(d.Reasons, policy.Reason{Code: code, Message: msg, Path: path})
	}
	if allow && len(d.Reasons) > 0 {
		return Decision{}, errors.New("API decision allows with reasons to deny")
	}
	d.Allow = allow
	return d, nil
}
