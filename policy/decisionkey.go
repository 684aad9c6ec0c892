package policy

import (
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
)

// annotationsUnread reports whether no module of p (tests aside) can read the annotations keys
// from its input: every use of input names a constant first key (input.tenant, input["mounts"],
// object.get(input, "hooks", []), object.get(input, ["seccomp", "profile"], "")) or only tests
// its type (is_object(input)), and every use of input.annotations a constant key that is not
// among keys. Anything else is a doubt, answered false: input or input.annotations used whole (a
// value, another function's argument, a with target), a variable key, an import of input.
func annotationsUnread(p *Policy, keys []string) bool {
	for name, m := range p.Modules {
		if isTestModule(name) {
			continue
		}
		for _, imp := range m.Imports {
			if r, ok := imp.Path.Value.(ast.Ref); ok && r.HasPrefix(ast.InputRootRef) {
				return false
			}
		}
		// input as the first argument of a call that reads only what its constant second
		// argument names, or only its type.
		sanctioned := map[*ast.Term]bool{}
		call := func(terms []*ast.Term) {
			if len(terms) < 2 || !isInput(terms[1]) {
				return
			}
			switch terms[0].String() {
			case "object.get":
				if len(terms) == 4 && constantPath(terms[2], keys) {
					sanctioned[terms[1]] = true
				}
			case "is_object":
				if len(terms) == 2 {
					sanctioned[terms[1]] = true
				}
			}
		}
		ast.WalkExprs(m, func(x *ast.Expr) bool {
			if terms, ok := x.Terms.([]*ast.Term); ok && x.IsCall() {
				call(terms)
			}
			return false
		})
		ast.WalkTerms(m, func(t *ast.Term) bool {
			if c, ok := t.Value.(ast.Call); ok {
				call(c)
			}
			return false
		})
		// Every use of input is a variable "input" heading a reference (the bare input too):
		// as many variables as checked references, or input was reached some other way.
		vars, refs, ok := 0, 0, true
		ast.WalkVars(m, func(v ast.Var) bool {
			if v.Equal(ast.InputRootDocument.Value) {
				vars++
			}
			return false
		})
		ast.WalkTerms(m, func(t *ast.Term) bool {
			r, isRef := t.Value.(ast.Ref)
			if !isRef || !r.HasPrefix(ast.InputRootRef) {
				return false
			}
			refs++
			if !sanctioned[t] && !inputRefUnread(r, keys) {
				ok = false
			}
			return false
		})
		if !ok || vars != refs {
			return false
		}
	}
	return true
}

// isInput reports whether t is the bare input document.
func isInput(t *ast.Term) bool {
	r, ok := t.Value.(ast.Ref)
	return ok && r.Equal(ast.InputRootRef)
}

// constantPath reports whether t, object.get's key argument on input, is a constant string or an
// array whose elements unreadPath accepts.
func constantPath(t *ast.Term, keys []string) bool {
	switch v := t.Value.(type) {
	case ast.String:
		return unreadPath([]*ast.Term{t}, keys)
	case *ast.Array:
		path := make([]*ast.Term, v.Len())
		for i := range path {
			path[i] = v.Elem(i)
		}
		return unreadPath(path, keys)
	}
	return false
}

// inputRefUnread checks one reference headed by input (see annotationsUnread).
func inputRefUnread(r ast.Ref, keys []string) bool { return unreadPath(r[1:], keys) }

// unreadPath reports whether the path below input names no key among keys under annotations (nor
// annotations whole): only the leading elements that decide it must be constant strings.
func unreadPath(path []*ast.Term, keys []string) bool {
	if len(path) == 0 {
		return false
	}
	first, ok := path[0].Value.(ast.String)
	switch {
	case !ok:
		return false
	case first != "annotations":
		return true
	case len(path) < 2:
		return false
	}
	key, ok := path[1].Value.(ast.String)
	return ok && !slices.Contains(keys, string(key))
}
