package policy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// DecideQuota reads the limits the policy gives and its refusals with their codes; a malformed
// limit denies.
func TestDecideQuota(t *testing.T) {
	dir := t.TempDir()
	data := `{"bulwark": {"tenants": {"q": {"max_containers": 2, "max_containers_cpus": 0.5}, "open": {}, "bad": {"max_containers": -1}}}}`
	if err := os.WriteFile(filepath.Join(dir, "data.json"), []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := mustPrepare(t, p)
	ctx := context.Background()
	one := &QuotaUsage{Containers: 1, Memory: 1 << 20, Pids: 10, NanoCPUs: 250_000_000}

	d := e.DecideQuota(ctx, QuotaRequest{Tenant: "q", Usage: QuotaUsage{Containers: 1}, Request: one})
	if !d.Allow || d.Limits.Containers == nil || *d.Limits.Containers != 2 || d.Limits.NanoCPUs == nil || *d.Limits.NanoCPUs != 500_000_000 || d.Limits.Memory != nil {
		t.Fatalf("within quota: %+v", d)
	}
	d = e.DecideQuota(ctx, QuotaRequest{Tenant: "q", Usage: QuotaUsage{Containers: 2, NanoCPUs: 300_000_000}, Request: one})
	var de *DeniedError
	if err := d.Err(); !errors.As(err, &de) || !hasCode(de.Decision, CodeQuotaContainers) || !hasCode(de.Decision, CodeQuotaCPUs) {
		t.Fatalf("over quota: %v", d.Err())
	}
	if d := e.DecideQuota(ctx, QuotaRequest{Tenant: "open", Request: one}); !d.Allow || d.Limits.Any() {
		t.Fatalf("no quota: %+v", d)
	}
	if d := e.DecideQuota(ctx, QuotaRequest{Tenant: "bad"}); d.Allow || len(d.Reasons) != 1 || d.Reasons[0].Code != "QUOTA_CONFIG_INVALID" {
		t.Fatalf("invalid quota: %+v", d)
	}
}

func hasCode(d Decision, code string) bool {
	for _, r := range d.Reasons {
		if r.Code == code {
			return true
		}
	}
	return false
}

// A policy of its own with no quota rules sets no quota; one whose rule is there but undefined
// for a request denies.
func TestDecideQuotaWithoutQuotaRules(t *testing.T) {
	for _, c := range []struct {
		rules string
		allow bool
	}{
		{"package bulwark.run\n\ndecision := {\"allow\": true, \"reasons\": []}\n", true},
		{"package bulwark.run\n\ndecision := {\"allow\": true, \"reasons\": []}\n\nquota_decision := {\"allow\": true, \"reasons\": [], \"limits\": {}} if input.tenant == \"x\"\n", false},
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "run.rego"), []byte(c.rules), 0o600)
		os.WriteFile(filepath.Join(dir, "data.json"), []byte(`{"bulwark": {"tenants": {"q": {}}}}`), 0o600)
		p, err := LoadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		d := mustPrepare(t, p).DecideQuota(context.Background(), QuotaRequest{Tenant: "q", Request: &QuotaUsage{Containers: 1}})
		if d.Allow != c.allow || d.Limits.Any() {
			t.Errorf("%s: %+v", c.rules, d)
		}
	}
}
