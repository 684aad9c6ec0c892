package compiler

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"bulwark.dev/bulwark/profiles"
	"bulwark.dev/bulwark/sandbox/internal/seccomp"
)

// BenchmarkGetppid measures the cost the filter adds to a cheap, allowed system call. Each case
// runs b.N getppid calls in a fresh child before and after loading the programs (a filter cannot
// be removed) and reports the time per call under the filter as ns/op, the difference as
// filter-ns/op, and the Load time as load-ns.
//
//	go test -run '^$' -bench Getppid -benchtime 2000000x ./sandbox/internal/seccomp/
func BenchmarkGetppid(b *testing.B) {
	def := compileDefault(b)
	docker, err := Compile(dockerLike(b))
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name  string
		progs []*seccomp.Program
	}{
		{"none", nil},
		{"bulwark-default", []*seccomp.Program{def}},
		{"docker-like", []*seccomp.Program{docker}},
		{"bulwark-default+docker-like", []*seccomp.Program{def, docker}},
	}
	if f := realDockerDefault(); f != "" {
		real, err := Compile(parseFile(b, f))
		if err != nil {
			b.Fatal(err)
		}
		cases = append(cases, struct {
			name  string
			progs []*seccomp.Program
		}{"docker-default", []*seccomp.Program{real}})
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			out, err := runHelper(b, "bench", c.progs, []string{fmt.Sprintf("%s=%d", envN, b.N)})
			if err != nil {
				b.Fatal(err)
			}
			f := strings.Fields(out)
			if len(f) != 3 {
				b.Fatalf("helper output %q", out)
			}
			before, _ := strconv.ParseFloat(f[0], 64)
			after, _ := strconv.ParseFloat(f[1], 64)
			load, _ := strconv.ParseFloat(f[2], 64)
			b.ReportMetric(after/float64(b.N), "ns/op")
			b.ReportMetric((after-before)/float64(b.N), "filter-ns/op")
			b.ReportMetric(load, "load-ns")
			insns := 0
			for _, p := range c.progs {
				insns += p.Len()
			}
			b.ReportMetric(float64(insns), "bpf-insns")
		})
	}
}

// BenchmarkCompile is what every start would pay without the cache (runc and crun pay it).
func BenchmarkCompile(b *testing.B) {
	p := profiles.DefaultSeccomp()
	for b.Loop() {
		if _, err := Compile(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCachedCompileHit is what a start pays with a warm cache: digest, read, verify, decode.
func BenchmarkCachedCompileHit(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "cache")
	p := profiles.DefaultSeccomp()
	if _, err := seccomp.CachedCompile(dir, p, Compile); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := seccomp.CachedCompile(dir, p, Compile); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDefaultSeccomp is the cost of parsing the embedded profile, which the cache key needs.
func BenchmarkDefaultSeccomp(b *testing.B) {
	for b.Loop() {
		profiles.DefaultSeccomp()
	}
}

func BenchmarkDigest(b *testing.B) {
	p := profiles.DefaultSeccomp()
	for b.Loop() {
		profiles.SeccompDigest(p)
	}
}
