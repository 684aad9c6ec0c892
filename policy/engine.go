// Package policy decides every run request with an embedded OPA (Rego v1) engine: it evaluates a
// prepared policy (the embedded default, an operator directory, or a signed bundle) on the request
// document (bulwark.dev/run/v1, package policy/document, whose types it names as its own) and
// returns a decision with reasons and constraints. Undefined or failing policy means deny.
package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

// Engine holds one prepared policy and decides requests with it; it is safe for concurrent use.
type Engine struct {
	pq rego.PreparedEvalQuery

	// The per-tenant part of decisions (tenantcache.go), built on the second decision.
	compiler    *ast.Compiler
	common      []func(*rego.Rego)
	decisions   atomic.Uint64
	seederOnce  sync.Once
	tenants     *tenantSeeder // nil: no tenant-only rules, or not built yet; set once by seederOnce
	noSeed      bool          // tests: evaluate everything on every decision
	info        Info
	recorder    DecisionRecorder
	prepareTime time.Duration

	// The storage and quota decisions (storage.go, quota.go), prepared on first use.
	storage sideQuery
	quota   sideQuery
}

// Option configures an Engine.
type Option func(*Engine)

// WithRecorder hands every decision to r (nil: decisions are not recorded).
func WithRecorder(r DecisionRecorder) Option { return func(e *Engine) { e.recorder = r } }

// NewEngine compiles and prepares p once; Decide then evaluates it many times. A policy that
// does not compile, or does not define data.bulwark.run.decision, is refused here rather than
// denying every request later.
func NewEngine(ctx context.Context, p *Policy, opts ...Option) (*Engine, error) {
	e := &Engine{info: p.Info, recorder: LogRecorder{}}
	for _, o := range opts {
		o(e)
	}
	start := time.Now()
	common := []func(*rego.Rego){
		rego.SetRegoVersion(ast.RegoV1),
		// Reads return AST values, so tenant data is not converted on every decision.
		rego.Store(inmem.NewFromObjectWithOpts(p.Data, inmem.OptRoundTripOnWrite(true), inmem.OptReturnASTValuesOnRead(true))),
		// A builtin error (e.g. a type error in a rule) fails the evaluation instead of
		// making one rule quietly undefined.
		rego.StrictBuiltinErrors(true),
	}
	var compiler *ast.Compiler
	ropts := append([]func(*rego.Rego){
		rego.Query(Query),
		rego.CompilerHook(func(c *ast.Compiler) { compiler = c }),
	}, common...)
	n := 0
	for name, m := range p.Modules {
		if isTestModule(name) {
			continue
		}
		ropts = append(ropts, rego.ParsedModule(m))
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("prepare policy (%s %s): no policy modules", p.Info.Source, p.Info.Location)
	}
	pq, err := rego.New(ropts...).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("prepare policy (%s %s): %w", p.Info.Source, p.Info.Location, err)
	}
	if !definesDecision(p) {
		return nil, fmt.Errorf("prepare policy (%s %s): no rule defines %s", p.Info.Source, p.Info.Location, Query)
	}
	if p.commit != nil {
		if err := p.commit(); err != nil {
			return nil, fmt.Errorf("prepare policy (%s %s): %w", p.Info.Source, p.Info.Location, err)
		}
	}
	e.pq, e.compiler, e.common = pq, compiler, common
	e.prepareTime = time.Since(start)
	return e, nil
}

func definesDecision(p *Policy) bool {
	want := ast.MustParseRef(Query)
	for name, m := range p.Modules {
		if isTestModule(name) {
			continue
		}
		for _, r := range m.Rules {
			if r.Ref().GroundPrefix().Equal(want) || r.Path().Equal(want) {
				return true
			}
		}
	}
	return false
}

// Info reports the active policy.
func (e *Engine) Info() Info { return e.info }

// PrepareTime is how long NewEngine spent compiling and preparing.
func (e *Engine) PrepareTime() time.Duration { return e.prepareTime }

// Decide evaluates req. It never errors: an invalid request, an evaluation error or an
// undefined or malformed result is a deny with a reason saying so.
func (e *Engine) Decide(ctx context.Context, req *Request) Decision {
	start := time.Now()
	d := e.decide(ctx, req)
	rec := DecisionRecord{}
	if req != nil && e.recorder != nil {
		rec.InputDigest, rec.Tenant, rec.Operation = InputDigest(req), req.Tenant, req.Operation
	}
	return e.finish(d, start, rec)
}

// DecideDocument parses a raw request document (ParseRequest: schema, normalisation, bind
// sources resolved on this host) and decides it. A document that does not parse or validate is
// denied with REQUEST_INVALID and the field it is about.
func (e *Engine) DecideDocument(ctx context.Context, data []byte) Decision {
	start := time.Now()
	req, err := ParseRequest(data)
	if err != nil {
		path := ""
		var ie *InvalidRequestError
		if errors.As(err, &ie) {
			path = ie.Path
		}
		sum := sha256.Sum256(data)
		rec := DecisionRecord{InputDigest: "sha256:" + hex.EncodeToString(sum[:])}
		return e.finish(deny(CodeRequestInvalid, path, err), start, rec)
	}
	return e.Decide(ctx, req)
}

func (e *Engine) finish(d Decision, start time.Time, rec DecisionRecord) Decision {
	d.Revision = e.info.Revision
	d.Duration = time.Since(start)
	if d.Reasons == nil {
		d.Reasons = []Reason{}
	}
	if e.recorder != nil {
		rec.Allow, rec.Reasons, rec.Revision, rec.Duration = d.Allow, d.Reasons, d.Revision, d.Duration
		e.recorder.RecordDecision(rec)
	}
	return d
}

func (e *Engine) decide(ctx context.Context, req *Request) Decision {
	if req == nil {
		return deny(CodeRequestInvalid, "", errors.New("no request"))
	}
	if err := checkRequest(req); err != nil {
		var ie *InvalidRequestError
		errors.As(err, &ie)
		return deny(CodeRequestInvalid, ie.Path, err)
	}
	opts := make([]rego.EvalOption, 0, 4)
	if seed := e.seedFor(ctx, req.Tenant); seed != nil {
		opts = append(opts, rego.EvalVirtualCache(newSeededCache(seed)))
	}
	rs, err := e.pq.Eval(ctx, append(opts, rego.EvalParsedInput(toValue(req)),
		// The result is read from the AST directly (parseDecision): converting it to
		// map[string]any first cost allocations on every decision.
		rego.EvalGenerateJSON(keepTerm),
		// Per-evaluation metrics are never read; the default allocates a fresh set each time.
		rego.EvalMetrics(noMetrics))...)
	if err != nil {
		return deny(CodePolicyError, "", fmt.Errorf("policy evaluation failed: %w", err))
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return deny(CodePolicyUndefined, "", fmt.Errorf("policy left %s undefined", Query))
	}
	d, err := parseDecision(rs[0].Expressions[0].Value)
	if err != nil {
		return deny(CodePolicyError, "", fmt.Errorf("policy result: %w", err))
	}
	return d
}

var noMetrics = metrics.NoOp()

func keepTerm(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil }

// parseDecision reads the policy's result strictly: anything but the documented shape denies.
func parseDecision(v any) (Decision, error) {
	t, ok := v.(*ast.Term)
	if !ok {
		return Decision{}, fmt.Errorf("decision is %T, not a term", v)
	}
	obj, ok := t.Value.(ast.Object)
	if !ok {
		return Decision{}, fmt.Errorf("decision is %s, not an object", ast.ValueName(t.Value))
	}
	allow, ok := field(obj, "allow").(ast.Boolean)
	if !ok {
		return Decision{}, errors.New("decision.allow is not a boolean")
	}
	reasons, ok := field(obj, "reasons").(*ast.Array)
	if !ok {
		return Decision{}, errors.New("decision.reasons is not an array")
	}
	d := Decision{Reasons: make([]Reason, 0, reasons.Len())}
	for i := range reasons.Len() {
		ro, ok := reasons.Elem(i).Value.(ast.Object)
		if !ok {
			return Decision{}, fmt.Errorf("decision.reasons[%d] is not an object", i)
		}
		code, _ := field(ro, "code").(ast.String)
		msg, _ := field(ro, "message").(ast.String)
		path, _ := field(ro, "path").(ast.String)
		if code == "" {
			return Decision{}, fmt.Errorf("decision.reasons[%d] has no code", i)
		}
		d.Reasons = append(d.Reasons, Reason{Code: string(code), Message: string(msg), Path: string(path)})
	}
	if c, ok := field(obj, "constraints").(ast.Object); ok {
		var err error
		if d.Constraints.MaxMemory, err = optInt(c, "maxMemory"); err != nil {
			return Decision{}, err
		}
		if d.Constraints.MaxPids, err = optInt(c, "maxPids"); err != nil {
			return Decision{}, err
		}
		if d.Constraints.Capabilities, err = optStrings(c, "capabilities"); err != nil {
			return Decision{}, err
		}
		if d.Constraints.Egress, err = optStrings(c, "egress"); err != nil {
			return Decision{}, err
		}
		if d.Constraints.MaxNetworkRate, err = optInt(c, "maxNetworkRate"); err != nil {
			return Decision{}, err
		}
		if q := field(c, "quotas"); q != nil {
			l, err := parseQuotaLimits(q)
			if err != nil {
				return Decision{}, fmt.Errorf("constraints.quotas: %w", err)
			}
			d.Constraints.Quotas = &l
		}
	}
	// A policy that says allow while giving deny reasons contradicts itself: deny.
	d.Allow = bool(allow) && len(d.Reasons) == 0
	return d, nil
}

// field is obj[k], or nil when obj has no such key.
func field(obj ast.Object, k string) ast.Value {
	t := obj.Get(str(k))
	if t == nil {
		return nil
	}
	return t.Value
}

// optStrings reads an optional array of strings; present but empty is an empty, non-nil slice.
func optStrings(obj ast.Object, k string) ([]string, error) {
	v := field(obj, k)
	if v == nil {
		return nil, nil
	}
	a, ok := v.(*ast.Array)
	if !ok {
		return nil, fmt.Errorf("constraints.%s is %s, not an array", k, ast.ValueName(v))
	}
	out := make([]string, 0, a.Len())
	for i := range a.Len() {
		s, ok := a.Elem(i).Value.(ast.String)
		if !ok {
			return nil, fmt.Errorf("constraints.%s[%d] is not a string", k, i)
		}
		out = append(out, string(s))
	}
	return out, nil
}

func optInt(obj ast.Object, k string) (*int64, error) {
	v := field(obj, k)
	if v == nil {
		return nil, nil
	}
	n, ok := v.(ast.Number)
	if !ok {
		return nil, fmt.Errorf("constraints.%s is %s, not a number", k, ast.ValueName(v))
	}
	i, ok := n.Int64()
	if !ok {
		return nil, fmt.Errorf("constraints.%s: %s is not an integer", k, n)
	}
	return &i, nil
}
