package api

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"bulwark.dev/bulwark/policy"
)

func TestRegoTests(t *testing.T) {
	// The package directory: the shipped rules and their Rego tests (only the rules are embedded).
	p, err := Load(".", true)
	if err != nil {
		t.Fatal(err)
	}
	res, err := policy.RunTests(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) < 5 {
		t.Fatalf("only %d Rego tests ran", len(res))
	}
	for _, r := range res {
		if !r.Pass {
			t.Errorf("%s.%s: %s", r.Package, r.Name, r.Error)
		}
	}
}

func TestDecide(t *testing.T) {
	a, err := New(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	own := a.Decide(ctx, Input{Tenant: "a", Operation: "container.kill", Target: &Target{Kind: "container", ID: "x", Owner: "a"}})
	if !own.Allow {
		t.Fatalf("own container refused: %+v", own)
	}
	other := a.Decide(ctx, Input{Tenant: "a", Operation: "container.kill", Target: &Target{Kind: "container", ID: "x", Owner: "b"}})
	if other.Allow || !slices.Contains(other.Codes(), "CROSS_TENANT") {
		t.Fatalf("cross-tenant kill: %+v", other)
	}
	if op := a.Decide(ctx, Input{Operator: true, Operation: "container.kill", Target: &Target{Owner: "b"}}); !op.Allow {
		t.Fatalf("operator refused: %+v", op)
	}
}

// A policy that errs, says nothing or answers malformed denies (fail closed).
func TestFailClosed(t *testing.T) {
	for name, rules := range map[string]string{
		"undefined":     "package bulwark.api\n",
		"error":         "package bulwark.api\ndecision := {\"allow\": to_number(\"x\"), \"reasons\": []}\n",
		"malformed":     "package bulwark.api\ndecision := {\"allow\": \"yes\"}\n",
		"contradiction": "package bulwark.api\ndecision := {\"allow\": true, \"reasons\": [{\"code\": \"X\"}]}\n",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "api.rego"), []byte(rules), 0o600); err != nil {
				t.Fatal(err)
			}
			a, err := New(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			d := a.Decide(context.Background(), Input{Tenant: "a", Operation: "container.list"})
			if d.Allow || len(d.Reasons) == 0 {
				t.Fatalf("not refused: %+v", d)
			}
		})
	}
}

// A directory with only data keeps the embedded rules with the operator's data.
func TestDataOnlyDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "data.json"), []byte(`{"bulwark":{"api_tenants":{"a":{"denied_operations":["container.exec"]}}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := New(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if d := a.Decide(context.Background(), Input{Tenant: "a", Operation: "container.exec"}); d.Allow || !slices.Contains(d.Codes(), "OPERATION_NOT_GRANTED") {
		t.Fatalf("exec not withheld: %+v", d)
	}
	if d := a.Decide(context.Background(), Input{Tenant: "a", Operation: "container.list"}); !d.Allow {
		t.Fatalf("list refused: %+v", d)
	}
}

// BenchmarkDecide is one call's decision with the prepared embedded policy (a container
// operation of the caller's own tenant, the common case).
func BenchmarkDecide(b *testing.B) {
	a, err := New(context.Background(), "")
	if err != nil {
		b.Fatal(err)
	}
	in := Input{Tenant: "alice", UID: 1000, GID: 1000, Operation: "container.inspect",
		Target: &Target{Kind: "container", ID: "0123456789abcdef", Owner: "alice"}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if d := a.Decide(ctx, in); !d.Allow {
			b.Fatal(d.Message())
		}
	}
}
