package compiler

import (
	"math/bits"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/profiles"
	"bulwark.dev/bulwark/sandbox/internal/seccomp"
)

// The compact emitter must give every input the answer libseccomp's program gives. Both programs
// compare a syscall number only with constants (JEQ/JGT/JGE, never a bit test), so their answer
// is constant between consecutive constants: trying every constant of either program, and its
// neighbours, tries every class of numbers. Arguments are tried on every boundary the profile's
// conditions draw (each constant and its neighbours, per 32-bit word, high and low words
// combined), every value of a mask's bits where the mask has few, and random values.

var otherArches = []uint32{auditArchI386, auditArchX86_64, unix.AUDIT_ARCH_AARCH64, unix.AUDIT_ARCH_ARM, 0, 0xffffffff}

type target struct {
	arch   libseccomp.ScmpArch
	goarch string
	spec   specs.Arch
}

var targets = []target{
	{libseccomp.ArchAMD64, "amd64", specs.ArchX86_64},
	{libseccomp.ArchARM64, "arm64", specs.ArchAARCH64},
}

// compactAndLibseccomp compiles p for tg both ways; the compact emitter must not decline.
func compactAndLibseccomp(t *testing.T, p *specs.LinuxSeccomp, tg target) (compact, lib *seccomp.Program, rs *ruleSet) {
	t.Helper()
	compact, rs, err := compileFor(p, tg.arch, true)
	if err != nil {
		t.Fatal(err)
	}
	if rs.declined != nil {
		t.Fatalf("compact emitter declined: %v", rs.declined)
	}
	lib, _, err = compileFor(p, tg.arch, false)
	if err != nil {
		t.Fatal(err)
	}
	if compact.Sum() == lib.Sum() {
		t.Fatal("the two compilations gave the same program: the libseccomp path was not taken")
	}
	return compact, lib, rs
}

// assertSame runs both programs on d and fails on any difference.
func assertSame(t *testing.T, a, b *seccomp.Program, d seccompData) {
	t.Helper()
	ra, _, errA := simulate(a, d)
	rb, _, errB := simulate(b, d)
	if errA != nil || errB != nil || ra != rb {
		t.Fatalf("arch %#x nr %#x args %#x: compact %#x (%v), libseccomp %#x (%v)", d.arch, uint32(d.nr), d.args, ra, errA, rb, errB)
	}
}

func jumpConstants(progs ...*seccomp.Program) []uint32 {
	var out []uint32
	for _, p := range progs {
		for _, in := range p.Instructions() {
			if in.Code&0x07 == unix.BPF_JMP && in.Code != unix.BPF_JMP|unix.BPF_JA {
				out = append(out, in.K-1, in.K, in.K+1)
			}
		}
	}
	return out
}

// wordCandidates are the 32-bit values that reach every class of one word's comparisons: ws are
// the words compared, masked the (mask, value) pairs of masked comparisons.
func wordCandidates(ws []uint32, masked [][2]uint32) []uint32 {
	out := []uint32{0, 1, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff}
	for _, w := range ws {
		out = append(out, w-1, w, w+1)
	}
	for _, mv := range masked {
		m := mv[0]
		for _, w := range ws {
			// The ends of the range a prefix mask draws; else each bit outside the mask on top
			// of the compared value.
			out = append(out, w|^m, w&m, (w|^m)+1, (w&m)-1)
			for rest := ^m; rest != 0 && !prefixMask(m); rest &= rest - 1 {
				out = append(out, w|rest&-rest, (w&m)|rest&-rest)
			}
		}
		if bits.OnesCount32(m) <= 10 {
			out = append(out, subsets(m)...)
		}
		// Values that meet two masked comparisons at once, where they can.
		for _, nv := range masked {
			out = append(out, mv[1]&m|nv[1]&nv[0]&^m)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// argCandidates are the 64-bit values of one argument that reach every class of conds.
func argCandidates(conds []argCond) []uint64 {
	var his, los []uint32
	var hiMasked, loMasked [][2]uint32
	for _, c := range conds {
		for _, v := range []uint64{c.v, c.v2} {
			his, los = append(his, uint32(v>>32)), append(los, uint32(v))
		}
		if c.op == specs.OpMaskedEqual {
			hiMasked = append(hiMasked, [2]uint32{uint32(c.v >> 32), uint32(c.v2 >> 32)})
			loMasked = append(loMasked, [2]uint32{uint32(c.v), uint32(c.v2)})
		}
	}
	var out []uint64
	for _, h := range wordCandidates(his, hiMasked) {
		for _, l := range wordCandidates(los, loMasked) {
			out = append(out, uint64(h)<<32|uint64(l))
		}
	}
	return out
}

func sameOnEveryInput(t *testing.T, compact, lib *seccomp.Program, rs *ruleSet) {
	t.Helper()
	nrs := jumpConstants(compact, lib)
	for nr := uint32(0); nr < 2048; nr++ {
		nrs = append(nrs, nr)
	}
	for nr := range rs.calls {
		nrs = append(nrs, nr)
	}
	nrs = append(nrs, 0x3fffffff, 0x40000000, 0x40000001, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff)
	slices.Sort(nrs)
	nrs = slices.Compact(nrs)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, arch := range append([]uint32{rs.auditArch}, otherArches...) {
		for _, nr := range nrs {
			d := seccompData{nr: int32(nr), arch: arch}
			assertSame(t, compact, lib, d)
			for i := range d.args {
				d.args[i] = rng.Uint64()
			}
			assertSame(t, compact, lib, d)
		}
	}
	tried := 0
	for nr, rules := range rs.calls {
		args, cands, size := argSpace(rules)
		d := seccompData{nr: int32(nr), arch: rs.auditArch}
		if size <= 200_000 {
			// Every combination of the candidates.
			idx := make([]int, len(args))
			for {
				for i, a := range args {
					d.args[a] = cands[i][idx[i]]
				}
				assertSame(t, compact, lib, d)
				tried++
				i := 0
				for ; i < len(idx); i++ {
					if idx[i]++; idx[i] < len(cands[i]) {
						break
					}
					idx[i] = 0
				}
				if i == len(idx) {
					break
				}
			}
		} else {
			for range 200_000 {
				for i, a := range args {
					d.args[a] = cands[i][rng.IntN(len(cands[i]))]
				}
				assertSame(t, compact, lib, d)
				tried++
			}
		}
		for range 2000 {
			for _, a := range args {
				d.args[a] = rng.Uint64()
			}
			assertSame(t, compact, lib, d)
		}
	}
	t.Logf("%d instructions (libseccomp %d); %d syscall numbers x %d arches, %d argument combinations agree",
		compact.Len(), lib.Len(), len(nrs), len(otherArches)+1, tried)
}

// TestCompactMatchesLibseccomp compares the compact program with libseccomp's for the default
// profile on each architecture the emitter supports, and for the Docker-like fixture and the
// memfd refusal on the native one.
func TestCompactMatchesLibseccomp(t *testing.T) {
	for _, tg := range targets {
		t.Run("default-"+tg.goarch, func(t *testing.T) {
			p, err := profiles.ParseDockerSeccompWith(profiles.DefaultSeccompJSON(), profiles.ParseOptions{GOARCH: tg.goarch})
			if err != nil {
				t.Fatal(err)
			}
			compact, lib, rs := compactAndLibseccomp(t, p, tg)
			sameOnEveryInput(t, compact, lib, rs)
			if compact.Len() > 512 {
				t.Errorf("the default program has %d instructions; the kernel's copy of it outgrows a 4 KiB slab object past 512", compact.Len())
			}
		})
		t.Run("docker-like-"+tg.goarch, func(t *testing.T) {
			p := dockerLikeFor(t, tg.goarch)
			p.Architectures = []specs.Arch{tg.spec}
			compact, lib, rs := compactAndLibseccomp(t, p, tg)
			sameOnEveryInput(t, compact, lib, rs)
		})
	}
}

func dockerLikeFor(t *testing.T, goarch string) *specs.LinuxSeccomp {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "profiles", "seccomp", "testdata", "docker-like.json"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := profiles.ParseDockerSeccompWith(data, profiles.ParseOptions{GOARCH: goarch})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCompactMatchesLibseccompOnEveryOperator covers what the profiles above do not: every action,
// every operator on values whose high word is zero and whose high word is not, two conditions on
// two arguments, and a default that allows.
func TestCompactMatchesLibseccompOnEveryOperator(t *testing.T) {
	errno := uint(13)
	ops := []specs.LinuxSeccompOperator{specs.OpEqualTo, specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual,
		specs.OpGreaterThan, specs.OpGreaterEqual, specs.OpMaskedEqual}
	actions := []specs.LinuxSeccompAction{specs.ActKill, specs.ActKillProcess, specs.ActTrap, specs.ActErrno,
		specs.ActTrace, specs.ActLog}
	names := []string{"read", "write", "openat", "close", "fstat", "lseek", "mmap", "mprotect", "munmap", "brk",
		"rt_sigaction", "rt_sigprocmask", "pread64", "pwrite64", "readv", "writev"}
	p := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
	for i, op := range ops {
		for j, v := range []uint64{0x1234, 0x5_0000_1234} {
			args := []specs.LinuxSeccompArg{{Index: uint(j), Op: op, Value: v}}
			if op == specs.OpMaskedEqual {
				args[0].Value, args[0].ValueTwo = 0xffff_ffff_0000_ff0f, v&0xffff_ffff_0000_ff0f
			}
			if i%2 == 1 {
				args = append(args, specs.LinuxSeccompArg{Index: 3, Op: specs.OpGreaterEqual, Value: 7})
			}
			a := actions[(2*i+j)%len(actions)]
			var ret *uint
			if a == specs.ActErrno || a == specs.ActTrace {
				ret = &errno
			}
			p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: []string{names[(2*i+j)%len(names)]}, Action: a, ErrnoRet: ret, Args: args})
		}
	}
	// Masks on many bits that share some: tested one at a time, where one test says something of
	// another (the first two can hold together, the third with neither).
	p.Syscalls = append(p.Syscalls,
		specs.LinuxSyscall{Names: []string{"ioctl"}, Action: specs.ActErrno, ErrnoRet: &errno, Args: []specs.LinuxSeccompArg{
			{Index: 1, Op: specs.OpMaskedEqual, Value: 0xff00ff, ValueTwo: 0x110011}, {Index: 2, Op: specs.OpEqualTo, Value: 5}}},
		specs.LinuxSyscall{Names: []string{"ioctl"}, Action: specs.ActErrno, ErrnoRet: &errno, Args: []specs.LinuxSeccompArg{
			{Index: 1, Op: specs.OpMaskedEqual, Value: 0xffff00, ValueTwo: 0x112200}}},
		specs.LinuxSyscall{Names: []string{"ioctl"}, Action: specs.ActKillProcess, Args: []specs.LinuxSeccompArg{
			{Index: 1, Op: specs.OpMaskedEqual, Value: 0xf0f0f0, ValueTwo: 0x303030}}})
	for _, tg := range targets {
		t.Run(tg.goarch, func(t *testing.T) {
			p.Architectures = []specs.Arch{tg.spec}
			compact, lib, rs := compactAndLibseccomp(t, p, tg)
			sameOnEveryInput(t, compact, lib, rs)
		})
	}
}

// TestCompactMatchesLibseccompOnRealProfiles compares the two on the profiles Docker and Podman
// ship, where present, restricted to the native architecture (with i386 and x32 in the filter,
// as the profiles ask, the emitter declines and libseccomp's program is used).
func TestCompactMatchesLibseccompOnRealProfiles(t *testing.T) {
	files := realProfiles(t)
	tg := slices.IndexFunc(targets, func(tg target) bool { return tg.goarch == runtime.GOARCH })
	if tg < 0 {
		t.Skip("the compact emitter does not handle " + runtime.GOARCH)
	}
	for _, f := range files {
		t.Run(filepath.Base(filepath.Dir(f)), func(t *testing.T) {
			p := parseFile(t, f)
			if prog, err := Compile(p); err != nil || len(p.Architectures) > 1 && prog.Len() < 1000 {
				t.Fatalf("with its own architectures: %v, or not libseccomp's program", err)
			}
			p.Architectures = []specs.Arch{targets[tg].spec}
			if _, rs, err := compileFor(p, targets[tg].arch, true); err != nil || rs.declined != nil {
				t.Skipf("compact emitter declined (libseccomp's program is used): %v %v", err, rs.declined)
			}
			compact, lib, rs := compactAndLibseccomp(t, p, targets[tg])
			sameOnEveryInput(t, compact, lib, rs)
		})
	}
}
