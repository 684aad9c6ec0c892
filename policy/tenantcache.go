package policy

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// The per-tenant part of a decision (the tenant's settings over the defaults, its grants cut
// to the ceiling, its limits and the constraints they make) depends only on data, which is
// fixed for an Engine, and on input.tenant. It was about a fifth of every decision. The
// engine finds these rules in the compiled policy, has OPA evaluate them once per tenant, and
// hands the values to later evaluations through OPA's virtual-document cache, which is where
// OPA itself would have put them after evaluating them in that decision. Everything that
// depends on anything else in the request is still evaluated on every decision.
//
// A rule qualifies only when, with everything it depends on (rules, functions):
//   - it is a complete rule (one value, no arguments, a ground path);
//   - its only reference into input is exactly input.tenant (not input as a whole);
//   - it uses no `with` (which could change input or data under it) and no
//     non-deterministic builtin (time, random, http…), whose value must not be reused.
//
// The policy evaluated is the same; only where some values come from changes.

// maxTenantSeeds bounds the cache: tenant names come from requests, and an unbounded map
// keyed by them would grow with every made-up name. Past the bound, decisions evaluate the
// tenant part themselves, as before.
const maxTenantSeeds = 4096

type tenantSeeder struct {
	refs []ast.Ref // the qualifying rules' paths
	// query evaluates all of them with input {"tenant": t}: an array holding, per ref, [value]
	// or [] when the rule is undefined.
	query rego.PreparedEvalQuery

	mu    sync.RWMutex
	seeds map[string]topdown.VirtualCache // guarded by mu; read-only once stored
	// shared are the first tenant's values: a later tenant's equal value (the floor's
	// constant tables, the defaults) is stored as the same term, so each seed holds only
	// what differs. Guarded by mu.
	shared []*ast.Term
}

// newTenantSeeder finds the qualifying rules in c (compiled) and prepares one query for them.
// It returns nil when no rule qualifies (e.g. a policy that does not look at tenants).
func newTenantSeeder(ctx context.Context, c *ast.Compiler, base []func(*rego.Rego)) (*tenantSeeder, error) {
	refs := tenantOnlyRules(c)
	if len(refs) == 0 {
		return nil, nil
	}
	values := make([]*ast.Term, len(refs))
	for i, ref := range refs {
		v := ast.VarTerm(fmt.Sprintf("v%d", i))
		values[i] = ast.ArrayComprehensionTerm(v, ast.NewBody(ast.Equality.Expr(v, ast.NewTerm(ref.Copy()))))
	}
	opts := append(append([]func(*rego.Rego){}, base...), rego.Compiler(c), rego.ParsedQuery(ast.NewBody(ast.NewExpr(ast.ArrayTerm(values...)))))
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("prepare the tenant rules: %w", err)
	}
	return &tenantSeeder{refs: refs, query: pq, seeds: map[string]topdown.VirtualCache{}}, nil
}

// seed returns the virtual-document values of the tenant rules for tenant, computing them
// on first use; nil when the evaluation fails (the decision then evaluates those rules
// itself and meets the same failure there).
func (s *tenantSeeder) seed(ctx context.Context, tenant string) topdown.VirtualCache {
	s.mu.RLock()
	vc, ok := s.seeds[tenant]
	s.mu.RUnlock()
	if ok {
		return vc
	}
	rs, err := s.query.Eval(ctx, rego.EvalParsedInput(ast.NewObject(item("tenant", str(tenant)))),
		rego.EvalGenerateJSON(keepTerm), rego.EvalMetrics(noMetrics))
	if err != nil || len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return nil
	}
	t, ok := rs[0].Expressions[0].Value.(*ast.Term)
	if !ok {
		return nil
	}
	arr, ok := t.Value.(*ast.Array)
	if !ok || arr.Len() != len(s.refs) {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shared == nil {
		s.shared = make([]*ast.Term, len(s.refs))
	}
	vc = topdown.NewVirtualCache()
	for i, ref := range s.refs {
		var v *ast.Term // nil records "undefined", as OPA's own cache does
		if one, ok := arr.Elem(i).Value.(*ast.Array); ok && one.Len() == 1 {
			v = one.Elem(0)
		}
		switch {
		case v == nil:
		case s.shared[i] == nil:
			s.shared[i] = v
		case s.shared[i].Equal(v):
			v = s.shared[i]
		}
		vc.Put(ref, v)
	}
	if len(s.seeds) < maxTenantSeeds {
		s.seeds[tenant] = vc
	}
	return vc
}

// seedFor returns the tenant's precomputed values, or nil to evaluate everything. An engine's
// first decision does the latter: a one-shot `bulwark-runc create` decides once, and finding,
// preparing and computing the tenant rules (about 1 ms) would only lengthen its cold path.
func (e *Engine) seedFor(ctx context.Context, tenant string) topdown.VirtualCache {
	if e.noSeed || e.decisions.Add(1) == 1 {
		return nil
	}
	if s := e.seeder(ctx); s != nil {
		return s.seed(ctx, tenant)
	}
	return nil
}

// seeder builds the tenant seeder once. A failure to prepare its query only means decisions
// evaluate the tenant part themselves, as the first one did; the policy itself compiled.
func (e *Engine) seeder(ctx context.Context) *tenantSeeder {
	e.seederOnce.Do(func() {
		e.tenants, _ = newTenantSeeder(ctx, e.compiler, e.common)
	})
	return e.tenants
}

// seededCache is one evaluation's virtual-document cache: OPA's own, in front of which the
// tenant's precomputed values answer at the outermost frame. Under a `with` (a pushed frame)
// input or data may differ, so only the evaluation's own frames answer there.
type seededCache struct {
	topdown.VirtualCache
	seed  topdown.VirtualCache
	depth int
}

func newSeededCache(seed topdown.VirtualCache) *seededCache {
	return &seededCache{VirtualCache: topdown.NewVirtualCache(), seed: seed}
}

func (c *seededCache) Push() { c.depth++; c.VirtualCache.Push() }

func (c *seededCache) Pop() { c.depth--; c.VirtualCache.Pop() }

func (c *seededCache) Get(ref ast.Ref) (*ast.Term, bool) {
	if c.depth == 0 {
		if v, undefined := c.seed.Get(ref); v != nil || undefined {
			return v, undefined
		}
	}
	return c.VirtualCache.Get(ref)
}

// tenantOnlyRules lists the paths of the complete rules whose value is a function of data
// and input.tenant only (see the conditions above).
func tenantOnlyRules(c *ast.Compiler) []ast.Ref {
	memo := map[*ast.Rule]bool{}
	var qualifies func(r *ast.Rule) bool
	qualifies = func(r *ast.Rule) bool {
		if ok, seen := memo[r]; seen {
			return ok
		}
		memo[r] = false // a recursive dependency does not qualify
		ok := ruleTenantOnly(c, r, qualifies)
		memo[r] = ok
		return ok
	}
	var refs []ast.Ref
	seen := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(c.Modules)) {
		for _, r := range c.Modules[name].Rules {
			if r.Head.RuleKind() != ast.SingleValue || len(r.Head.Args) > 0 || !r.Ref().IsGround() {
				continue
			}
			path := r.Ref()
			// Every definition of the path (incl. else and default) must qualify.
			all := true
			for _, other := range c.GetRulesExact(path) {
				if !qualifies(other) {
					all = false
					break
				}
			}
			if all && !seen[path.String()] {
				seen[path.String()] = true
				refs = append(refs, path)
			}
		}
	}
	return refs
}

// ruleTenantOnly checks one rule (with its else chain) and recurses into the rules and
// functions it refers to.
func ruleTenantOnly(c *ast.Compiler, r *ast.Rule, qualifies func(*ast.Rule) bool) bool {
	ok := true
	for e := r; e != nil && ok; e = e.Else {
		ast.WalkExprs(e, func(x *ast.Expr) bool {
			if len(x.With) > 0 {
				ok = false
			}
			if x.IsCall() {
				if b, isBuiltin := ast.BuiltinMap[x.Operator().String()]; isBuiltin && b.Nondeterministic {
					ok = false
				}
			}
			return !ok
		})
		ast.WalkTerms(e, func(t *ast.Term) bool {
			if !ok {
				return true
			}
			switch v := t.Value.(type) {
			case ast.Var:
				if v.Equal(ast.InputRootDocument.Value) {
					ok = false // input as a whole (not inside a ref, which the Ref case sees)
				}
			case ast.Ref:
				ok = refTenantOnly(c, v, qualifies)
				return true // the ref's own terms were judged here
			}
			return false
		})
	}
	return ok
}

func refTenantOnly(c *ast.Compiler, ref ast.Ref, qualifies func(*ast.Rule) bool) bool {
	switch {
	case ref.HasPrefix(ast.InputRootRef):
		return len(ref) == 2 && ref[1].Equal(ast.StringTerm("tenant"))
	case ref.HasPrefix(ast.DefaultRootRef):
		for _, dep := range c.GetRules(ref) {
			if !qualifies(dep) {
				return false
			}
		}
		// A ref's non-ground parts (keys computed from other terms) are walked too.
		for _, t := range ref[1:] {
			if _, isRef := t.Value.(ast.Ref); isRef && !refTenantOnly(c, t.Value.(ast.Ref), qualifies) {
				return false
			}
		}
		return true
	default:
		for _, t := range ref[1:] {
			if r, isRef := t.Value.(ast.Ref); isRef && !refTenantOnly(c, r, qualifies) {
				return false
			}
		}
		return true
	}
}
