package policy

import (
	"runtime"

	"context"
	"encoding/json"
	"fmt"
	"github.com/open-policy-agent/opa/v1/ast"
	"golang.org/x/sys/unix"
	"os"
	"slices"
	"testing"
	"time"
)

// tenantsPolicy is the embedded policy with n generated tenants in its data.
func tenantsPolicy(tb testing.TB, n int) *Policy {
	tb.Helper()
	p, err := LoadEmbedded()
	if err != nil {
		tb.Fatal(err)
	}
	tenants := map[string]any{}
	for i := range n {
		tenants[fmt.Sprintf("tenant-%04d", i)] = map[string]any{
			"max_memory":             int64(1+i%8) << 30,
			"max_pids":               512 + i,
			"writable_bind_sources":  []any{fmt.Sprintf("/srv/tenant-%04d", i)},
			"grantable_capabilities": []any{"CHOWN", "KILL", "NET_BIND_SERVICE", "SETUID", "SETGID"},
		}
	}
	bw := p.Data["bulwark"].(map[string]any)
	bw["tenants"] = tenants
	return p
}

func benchDecide(b *testing.B, mutate func(*Request), wantAllow bool) {
	benchEngine(b, tenantsPolicy(b, 1000), mutate, wantAllow)
}

func benchEngine(b *testing.B, p *Policy, mutate func(*Request), wantAllow bool) {
	e := mustPrepare(b, p)
	req := benchRequest(b)
	req.Tenant = "tenant-0500"
	if mutate != nil {
		mutate(req)
	}
	ctx := context.Background()
	if d := e.Decide(ctx, req); d.Allow != wantAllow {
		b.Fatalf("decision %+v", d)
	}
	// Wall time is what a caller waits; on this shared 2-core machine it includes time spent
	// waiting for a CPU, so the thread's own CPU time is reported too (the evaluation is
	// synchronous on the locked thread).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var wall, cpu []time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		c0, start := threadCPU(), time.Now()
		d := e.Decide(ctx, req)
		wall = append(wall, time.Since(start))
		cpu = append(cpu, threadCPU()-c0)
		if d.Allow != wantAllow {
			b.Fatal("decision changed")
		}
	}
	b.StopTimer()
	report := func(lat []time.Duration, unit string) {
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-"+unit)
		b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-"+unit)
	}
	report(wall, "wall-µs")
	report(cpu, "cpu-µs")
}

func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		panic(err)
	}
	return time.Duration(ts.Nano())
}

func benchRequest(b *testing.B) *Request {
	b.Helper()
	doc, err := os.ReadFile("testdata/corpus/allow_minimal.json")
	if err != nil {
		b.Fatal(err)
	}
	var c corpusCase
	if err := json.Unmarshal(doc, &c); err != nil {
		b.Fatal(err)
	}
	req, err := ParseRequest(c.Request)
	if err != nil {
		b.Fatal(err)
	}
	return req
}

// BenchmarkDecideAllow is the common path: a floor-shaped request that is allowed.
func BenchmarkDecideAllow(b *testing.B) { benchDecide(b, nil, true) }

// BenchmarkDecideDeny has several deny reasons (each formats a message).
func BenchmarkDecideDeny(b *testing.B) {
	benchDecide(b, func(r *Request) {
		r.Capabilities = append(r.Capabilities, "SYS_ADMIN", "NET_RAW")
		r.Mounts = append(r.Mounts, Mount{Type: "bind", Source: "/etc", Destination: "/x", Options: []string{"rbind"}, Bind: true})
		r.Resources.MemoryLimit = nil
	}, false)
}

// BenchmarkDecideTrivialPolicy is the floor on this machine: the same request and data with a
// policy that allows without looking (input conversion, evaluation setup, result parsing).
func BenchmarkDecideTrivialPolicy(b *testing.B) {
	p := tenantsPolicy(b, 1000)
	mod, err := ast.ParseModuleWithOpts("trivial.rego", "package bulwark.run\n\ndecision := {\"allow\": true, \"reasons\": []}\n", ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		b.Fatal(err)
	}
	p.Modules = map[string]*ast.Module{"trivial.rego": mod}
	benchEngine(b, p, nil, true)
}

// BenchmarkPrepare is the one-off cost of compiling and preparing the default policy with
// 1,000 tenants.
func BenchmarkPrepare(b *testing.B) {
	p := tenantsPolicy(b, 1000)
	for b.Loop() {
		if _, err := NewEngine(context.Background(), p, WithRecorder(nil)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkColdDecision is what a one-shot `bulwark-runc create` pays: load the embedded
// policy, prepare it, decide one request.
func BenchmarkColdDecision(b *testing.B) {
	req := benchRequest(b)
	req.Tenant = "default"
	for b.Loop() {
		p, err := LoadEmbedded()
		if err != nil {
			b.Fatal(err)
		}
		e := mustPrepare(b, p)
		if d := e.Decide(context.Background(), req); !d.Allow {
			b.Fatalf("decision %+v", d)
		}
	}
}
