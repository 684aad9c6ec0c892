package policy

import (
	"io/fs"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"

	"bulwark.dev/bulwark/policy/document"
)

// DecisionCache is the decision cache (document.Cache) of a process that evaluates the policy
// itself: its build, which embeds the default policy, is the one that decides, and what may be
// stored is read from the policy that decided.
type DecisionCache struct {
	*document.Cache
}

// CacheBuild names, for a decision cache's key (document.OpenCache's build), this binary and the
// default policy it embeds; "" if either cannot be named (decisions are then not cached).
func CacheBuild() string {
	emb, err := embeddedDigest()
	build := document.BuildDigest()
	if err != nil || build == "" {
		return ""
	}
	return build + "\x00" + emb
}

// OpenDecisionCache returns the cache for the policy o selects, or nil when its decisions are not
// cached (document.OpenCache): the caller then loads and prepares the policy as before.
// auditOnly names annotations that only identify a request (document key.go).
func OpenDecisionCache(o SourceOptions, auditOnly ...string) *DecisionCache {
	c := document.OpenCache(o, CacheBuild(), auditOnly...)
	if c == nil {
		return nil
	}
	return &DecisionCache{c}
}

// Store records d, the decision the loaded policy p made on req, as far as p allows
// (document.Cache.Store with p's Storable).
func (c *DecisionCache) Store(p *Policy, req *Request, d Decision) error {
	return c.Cache.Store(req, d, StorableOf(p))
}

// StorableOf says what the decision cache may keep of p's decisions: whether p calls a
// non-deterministic builtin, and whether it can read given annotations (annotationsUnread).
func StorableOf(p *Policy) document.Storable {
	return document.Storable{Deterministic: deterministic(p), Unread: func(keys []string) bool { return annotationsUnread(p, keys) }}
}

// CachedRecord is the audit record of a decision Lookup returned for req.
func CachedRecord(req *Request, d Decision) DecisionRecord { return document.CachedRecord(req, d) }

// deterministic reports whether p calls no non-deterministic builtin anywhere.
func deterministic(p *Policy) bool {
	ok := true
	nondet := func(op ast.Ref) {
		if b, isBuiltin := ast.BuiltinMap[op.String()]; isBuiltin && b.Nondeterministic {
			ok = false
		}
	}
	for name, m := range p.Modules {
		if isTestModule(name) {
			continue
		}
		ast.WalkExprs(m, func(x *ast.Expr) bool {
			if x.IsCall() {
				nondet(x.Operator())
			}
			return !ok
		})
		ast.WalkTerms(m, func(t *ast.Term) bool {
			if call, isCall := t.Value.(ast.Call); isCall && len(call) > 0 {
				if op, isRef := call[0].Value.(ast.Ref); isRef {
					nondet(op)
				}
			}
			// A builtin named as a value (e.g. under `with`) is not called here; its call is.
			return !ok
		})
	}
	return ok
}

var embeddedDigest = sync.OnceValues(func() (string, error) {
	sub, err := fs.Sub(defaultFS, "default")
	if err != nil {
		return "", err
	}
	return document.TreeDigest(sub)
})
