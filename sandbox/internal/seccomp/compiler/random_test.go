package compiler

import (
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/profiles"
	"bulwark.dev/bulwark/sandbox/internal/seccomp"
)

// TestCompactMatchesRulesOnRandomProfiles checks the compact program against the rules themselves
// (threeWay) on random profiles: random subsets of syscalls (some without a number on arm64), every
// action and errno values, every operator on values and masks drawn so that rules collide (shared
// constants, prefix masks, masks with holes, high words), on both architectures. Profiles the
// emitter declines are counted, not compared (libseccomp's program is used for them).
//
// libseccomp's own program is not the reference here: where one syscall has several rules that
// can hold at once, libseccomp 2.5 does not give their OR (its manual leaves how rules of one
// syscall combine unspecified, libseccomp#118), so on such profiles the two differ on thousands
// of inputs, in both directions, with the compact program the one that gives what the rules say;
// the default profile (TestDefaultProgramMatchesItsRules) is not such a profile.
// BULWARK_SECCOMP_RANDOM sets the number of profiles (default 60), BULWARK_SECCOMP_SEED the seed.
func TestCompactMatchesRulesOnRandomProfiles(t *testing.T) {
	n := 60
	if s := os.Getenv("BULWARK_SECCOMP_RANDOM"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			t.Fatal(err)
		}
	}
	seed := uint64(1)
	if s := os.Getenv("BULWARK_SECCOMP_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(seed, 99))
	compared, declined, libWrong := 0, 0, [2]int{}
	for i := range n {
		p := randomProfile(rng)
		for _, tg := range targets {
			p.Architectures = []specs.Arch{tg.spec}
			compact, rs, err := compileFor(p, tg.arch, true)
			if err != nil {
				continue // refused by libseccomp (both ways)
			}
			if rs.declined != nil {
				declined++
				continue
			}
			lib, _, err := compileFor(p, tg.arch, false)
			if err != nil {
				t.Fatalf("profile %d: libseccomp refused what it compiled for the emitter: %v", i, err)
			}
			t.Run("", func(t *testing.T) {
				defer func() {
					if t.Failed() {
						t.Logf("profile %d (%s): %+v", i, tg.goarch, p)
					}
				}()
				sameOnSomeInputs(t, compact, lib, rs, rng, &threeWay{compact: compact, lib: lib, rs: rs, libWrong: &libWrong})
			})
			compared++
		}
	}
	t.Logf("%d programs compared, %d declined; libseccomp differed from the rules on %d inputs with a weaker action, %d with a stronger one", compared, declined, libWrong[0], libWrong[1])
}

// TestDefaultProgramMatchesItsRules: the default profile's program (the floor's first filter) gives
// on every boundary input exactly what its rules say, and so does libseccomp's for it.
func TestDefaultProgramMatchesItsRules(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, tg := range targets {
		t.Run(tg.goarch, func(t *testing.T) {
			p, err := profiles.ParseDockerSeccompWith(profiles.DefaultSeccompJSON(), profiles.ParseOptions{GOARCH: tg.goarch})
			if err != nil {
				t.Fatal(err)
			}
			compact, lib, rs := compactAndLibseccomp(t, p, tg)
			var libWrong [2]int
			sameOnSomeInputs(t, compact, lib, rs, rng, &threeWay{compact: compact, lib: lib, rs: rs, libWrong: &libWrong})
			if libWrong != [2]int{} {
				t.Fatalf("libseccomp's program differs from the default profile's rules on %v inputs", libWrong)
			}
		})
	}
}

var randomNames = []string{"read", "write", "openat", "close", "ioctl", "mmap", "mprotect", "clone", "clone3",
	"socket", "personality", "prctl", "unshare", "setns", "kill", "fcntl", "open", "getppid", "keyctl", "bpf"}

func randomWord(rng *rand.Rand) uint32 {
	pool := []uint32{0, 1, 2, 3, 0x7f, 0x80, 0xff, 0x100, 0x1000, 0xfffe, 0xffff, 0x10000, 0x7fffffff,
		0x80000000, 0x80000001, 0xfffffffe, 0xffffffff}
	if rng.IntN(4) == 0 {
		return rng.Uint32()
	}
	return pool[rng.IntN(len(pool))]
}

func randomMask(rng *rand.Rand) uint32 {
	switch rng.IntN(6) {
	case 0:
		return ^uint32(0) << rng.UintN(33) // prefix masks, 0 included
	case 1:
		return 1 << rng.UintN(32)
	case 2:
		return rng.Uint32() & 0xff
	case 3:
		return rng.Uint32()
	case 4:
		return ^uint32(0)
	}
	return (rng.Uint32() & 0x0f0f) | 1<<rng.UintN(32)
}

func randomArg(rng *rand.Rand) specs.LinuxSeccompArg {
	ops := []specs.LinuxSeccompOperator{specs.OpEqualTo, specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual,
		specs.OpGreaterThan, specs.OpGreaterEqual, specs.OpMaskedEqual}
	a := specs.LinuxSeccompArg{Index: uint(rng.IntN(3)) * uint(1+rng.IntN(2)), Op: ops[rng.IntN(len(ops))]}
	hi := func() uint64 {
		if rng.IntN(3) == 0 {
			return uint64(randomWord(rng)) << 32
		}
		return 0
	}
	if a.Op == specs.OpMaskedEqual {
		m := uint64(randomMask(rng))
		if rng.IntN(3) == 0 {
			m |= uint64(randomMask(rng)) << 32
		}
		a.Value = m
		a.ValueTwo = (hi() | uint64(randomWord(rng))) & m
		if rng.IntN(8) == 0 {
			a.ValueTwo |= uint64(randomWord(rng)) // a value outside the mask: never holds
		}
	} else {
		a.Value = hi() | uint64(randomWord(rng))
	}
	return a
}

func randomProfile(rng *rand.Rand) *specs.LinuxSeccomp {
	actions := []specs.LinuxSeccompAction{specs.ActKill, specs.ActKillProcess, specs.ActTrap, specs.ActErrno,
		specs.ActTrace, specs.ActLog, specs.ActAllow}
	errnos := []uint{0, 1, 13, 38, 0x7fff}
	action := func() (specs.LinuxSeccompAction, *uint) {
		a := actions[rng.IntN(len(actions))]
		if (a == specs.ActErrno || a == specs.ActTrace) && rng.IntN(4) != 0 {
			e := errnos[rng.IntN(len(errnos))]
			return a, &e
		}
		return a, nil
	}
	p := &specs.LinuxSeccomp{}
	p.DefaultAction, p.DefaultErrnoRet = action()
	if p.DefaultAction == specs.ActErrno && p.DefaultErrnoRet == nil {
		// Mostly a default that refuses, as real profiles have.
		e := uint(1)
		p.DefaultErrnoRet = &e
	}
	// Half the profiles give every rule one action, so that overlapping rules agree and the
	// emitter does not decline them.
	oneAct, oneErrno := action()
	one := rng.IntN(2) == 0
	for range 1 + rng.IntN(12) {
		sc := specs.LinuxSyscall{}
		sc.Action, sc.ErrnoRet = action()
		if one {
			sc.Action, sc.ErrnoRet = oneAct, oneErrno
		}
		for range 1 + rng.IntN(3) {
			sc.Names = append(sc.Names, randomNames[rng.IntN(len(randomNames))])
		}
		for range rng.IntN(4) {
			sc.Args = append(sc.Args, randomArg(rng))
		}
		p.Syscalls = append(p.Syscalls, sc)
	}
	return p
}

// sameOnSomeInputs is sameOnEveryInput with a smaller budget per profile: every syscall number a
// program compares with and its neighbours, on every arch value; per syscall with rules, up to
// 20k combinations of each argument's boundary values, and random values.
func sameOnSomeInputs(t *testing.T, compact, lib *seccomp.Program, rs *ruleSet, rng *rand.Rand, c *threeWay) {
	t.Helper()
	nrs := jumpConstants(compact, lib)
	for nr := range rs.calls {
		nrs = append(nrs, nr-1, nr, nr+1)
	}
	nrs = append(nrs, 0, 1, 0x3fffffff, 0x40000000, 0x40000001, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff)
	slices.Sort(nrs)
	nrs = slices.Compact(nrs)
	for _, arch := range append([]uint32{rs.auditArch}, otherArches...) {
		for _, nr := range nrs {
			d := seccompData{nr: int32(nr), arch: arch}
			c.check(t, d)
			for i := range d.args {
				d.args[i] = rng.Uint64()
			}
			c.check(t, d)
		}
	}
	for nr, rules := range rs.calls {
		args, cands, size := argSpace(rules)
		d := seccompData{nr: int32(nr), arch: rs.auditArch}
		if len(args) == 0 {
			continue
		}
		if size <= 20_000 {
			idx := make([]int, len(args))
			for {
				for i, a := range args {
					d.args[a] = cands[i][idx[i]]
				}
				c.check(t, d)
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
			for range 20_000 {
				for i, a := range args {
					d.args[a] = cands[i][rng.IntN(len(cands[i]))]
				}
				c.check(t, d)
			}
		}
		for range 500 {
			for _, a := range args {
				d.args[a] = rng.Uint64()
			}
			c.check(t, d)
		}
	}
}

// threeWay runs the compact program, libseccomp's and the rules themselves (what the OCI profile
// says: the action of the rules whose conditions all hold, or the default) on each input. The
// compact program must give the rules' answer; where libseccomp does not, it is counted.
type threeWay struct {
	compact, lib *seccomp.Program
	rs           *ruleSet
	libWrong     *[2]int // libseccomp's answer weaker, stronger than the rules'
}

// precedence ranks a seccomp return value as the kernel does when filters disagree: the lower
// the rank, the stronger the action.
func precedence(ret uint32) int {
	order := []uint32{unix.SECCOMP_RET_KILL_PROCESS, unix.SECCOMP_RET_KILL_THREAD, unix.SECCOMP_RET_TRAP,
		unix.SECCOMP_RET_ERRNO, unix.SECCOMP_RET_USER_NOTIF, unix.SECCOMP_RET_TRACE, unix.SECCOMP_RET_LOG,
		unix.SECCOMP_RET_ALLOW}
	return slices.Index(order, ret&unix.SECCOMP_RET_ACTION_FULL)
}

func (c *threeWay) check(t *testing.T, d seccompData) {
	t.Helper()
	want, ok := c.rs.verdict(d)
	rc, _, errC := simulate(c.compact, d)
	rl, _, errL := simulate(c.lib, d)
	if errC != nil || errL != nil || !ok {
		t.Fatalf("arch %#x nr %#x: %v %v (rules decided: %v)", d.arch, uint32(d.nr), errC, errL, ok)
	}
	if rc != want {
		t.Fatalf("arch %#x nr %#x args %#x: compact %#x, the rules %#x (libseccomp %#x)", d.arch, uint32(d.nr), d.args, rc, want, rl)
	}
	if rl != want {
		if c.libWrong[0]+c.libWrong[1] < 5 {
			t.Logf("libseccomp differs from the rules: arch %#x nr %#x args %#x: libseccomp %#x, the rules and compact %#x", d.arch, uint32(d.nr), d.args, rl, want)
		}
		if precedence(rl) > precedence(want) {
			c.libWrong[0]++
		} else {
			c.libWrong[1]++
		}
	}
}

// verdict is what rs says of d, by its definition; false when rules with different actions hold.
func (rs *ruleSet) verdict(d seccompData) (uint32, bool) {
	switch {
	case d.arch != rs.auditArch:
		return rs.badArch, true
	case rs.x32Kill && uint32(d.nr) >= 0x40000000 && uint32(d.nr) != 0xffffffff:
		return rs.badArch, true
	}
	ret, found := rs.def, false
	for _, r := range rs.calls[uint32(d.nr)] {
		holds := true
		for _, c := range r.conds {
			a := d.args[c.arg]
			switch c.op {
			case specs.OpEqualTo:
				holds = holds && a == c.v
			case specs.OpNotEqual:
				holds = holds && a != c.v
			case specs.OpLessThan:
				holds = holds && a < c.v
			case specs.OpLessEqual:
				holds = holds && a <= c.v
			case specs.OpGreaterThan:
				holds = holds && a > c.v
			case specs.OpGreaterEqual:
				holds = holds && a >= c.v
			case specs.OpMaskedEqual:
				holds = holds && a&c.v == c.v2
			}
		}
		if !holds {
			continue
		}
		if found && r.ret != ret {
			return 0, false
		}
		ret, found = r.ret, true
	}
	return ret, true
}

// argSpace is what an exhaustive or sampled check of a syscall's rules varies: the arguments any
// rule tests (in order), each one's candidate values, and how many combinations they make.
func argSpace(rules []argRule) (args []uint, cands [][]uint64, size int) {
	perArg := map[uint][]argCond{}
	for _, r := range rules {
		for _, c := range r.conds {
			perArg[c.arg] = append(perArg[c.arg], c)
		}
	}
	size = 1
	for a := uint(0); a < 6; a++ {
		if cs, ok := perArg[a]; ok {
			args, cands = append(args, a), append(cands, argCandidates(cs))
			size *= len(cands[len(cands)-1])
		}
	}
	return args, cands, size
}
