package policy

import (
	"context"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Seeding the tenant part must never change a decision: every corpus case, for every test
// tenant and a made-up one, decides the same with and without it.
func TestTenantSeedMatchesFullEvaluation(t *testing.T) {
	seeded := testEngine(t)
	if seeded.seeder(context.Background()) == nil {
		t.Fatal("the default policy has no tenant-only rules")
	}
	full := testEngine(t)
	full.noSeed = true
	files, err := filepath.Glob("testdata/corpus/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	ctx := context.Background()
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			_, doc := loadCase(t, file)
			req, err := ParseRequest(doc)
			if err != nil {
				return // refused before policy: nothing to seed
			}
			for _, tenant := range []string{req.Tenant, "default", "acme", "tight", "broken", "nobody", ""} {
				req.Tenant = tenant
				for range 2 { // the second time from the seed cache
					a, b := seeded.Decide(ctx, req), full.Decide(ctx, req)
					if a.Allow != b.Allow || !reflect.DeepEqual(a.Reasons, b.Reasons) || !reflect.DeepEqual(a.Constraints, b.Constraints) {
						t.Fatalf("tenant %q: seeded %+v, full %+v", tenant, a, b)
					}
				}
			}
		})
	}
}

func TestTenantOnlyRules(t *testing.T) {
	const src = `package p

tenant := input.tenant

limit := data.limits[tenant]

doubled := limit * 2

uses_input := object.get(input, "tenant", "")

reads_other := input.operation

via_dep := {"l": limit, "o": reads_other}

clock := time.now_ns()

under_with := v if {
	v := limit with input.tenant as "x"
}

f(x) := x + limit

via_func := f(1)

deny contains tenant if limit > 1
`
	mod := ast.MustParseModuleWithOpts(src, ast.ParserOptions{RegoVersion: ast.RegoV1})
	c := ast.NewCompiler()
	if c.Compile(map[string]*ast.Module{"p.rego": mod}); c.Failed() {
		t.Fatal(c.Errors)
	}
	var got []string
	for _, r := range tenantOnlyRules(c) {
		got = append(got, r.String())
	}
	want := []string{"data.p.tenant", "data.p.limit", "data.p.doubled", "data.p.via_func"}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("tenant-only rules %v, want %v", got, want)
	}
}

// Seeds are computed on first use and then shared between concurrent decisions (run with -race).
func TestTenantSeedConcurrent(t *testing.T) {
	seeded := testEngine(t)
	full := testEngine(t)
	full.noSeed = true
	_, doc := loadCase(t, "testdata/corpus/allow_minimal.json")
	ctx := context.Background()
	tenants := []string{"default", "acme", "tight", "broken", "nobody"}
	want := map[string]Decision{}
	for _, tenant := range tenants {
		req, err := ParseRequest(doc)
		if err != nil {
			t.Fatal(err)
		}
		req.Tenant = tenant
		want[tenant] = full.Decide(ctx, req)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := range 8 {
		wg.Go(func() {
			req, err := ParseRequest(doc)
			if err != nil {
				errs <- err.Error()
				return
			}
			for i := range 50 {
				req.Tenant = tenants[(g+i)%len(tenants)]
				d := seeded.Decide(ctx, req)
				if w := want[req.Tenant]; d.Allow != w.Allow || !reflect.DeepEqual(d.Reasons, w.Reasons) {
					errs <- req.Tenant
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("concurrent decision differs: %s", e)
	}
}

// The floor's constant tables are stored once, not once per tenant.
func TestTenantSeedsShareEqualValues(t *testing.T) {
	e := testEngine(t)
	ctx := context.Background()
	a, b := e.seeder(ctx).seed(ctx, "acme"), e.seeder(ctx).seed(ctx, "tight")
	ref := ast.MustParseRef("data.bulwark.run.forbidden_capabilities")
	va, _ := a.Get(ref)
	vb, _ := b.Get(ref)
	if va == nil || va != vb {
		t.Fatalf("forbidden_capabilities not shared: %p %p", va, vb)
	}
	mem := ast.MustParseRef("data.bulwark.run.max_memory")
	ma, _ := a.Get(mem)
	mb, _ := b.Get(mem)
	if ma == nil || mb == nil || ma.Equal(mb) {
		t.Fatalf("max_memory: acme %v, tight %v", ma, mb)
	}
}

// A one-shot caller (one decision) pays nothing for the tenant cache.
func TestTenantSeederBuiltOnSecondDecision(t *testing.T) {
	e := testEngine(t)
	_, doc := loadCase(t, "testdata/corpus/allow_minimal.json")
	ctx := context.Background()
	for i := range 3 {
		if built := e.tenants != nil; built != (i >= 2) {
			t.Fatalf("before decision %d: seeder built = %v", i+1, built)
		}
		if d := e.DecideDocument(ctx, doc); !d.Allow {
			t.Fatalf("decision %d: %+v", i+1, d)
		}
	}
}
