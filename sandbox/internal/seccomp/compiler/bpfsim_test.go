package compiler

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"bulwark.dev/bulwark/sandbox/internal/seccomp"
	"golang.org/x/sys/unix"
)

// A tiny classic-BPF interpreter for seccomp programs: it runs the compiled filter in user space
// on any (arch, nr, args), so the tests can sweep far more argument values than kernel probes
// can, and count the instructions a syscall walks (a noise-free cost measure).

const (
	auditArchX86_64 = 0xc000003e
	auditArchI386   = 0x40000003
	retAllow        = 0x7fff0000
	retErrno        = 0x00050000
	retKillProcess  = 0x80000000
	retActionFull   = 0xffff0000
)

type seccompData struct {
	nr   int32
	arch uint32
	args [6]uint64
}

func (d *seccompData) word(off uint32) (uint32, error) {
	switch {
	case off%4 != 0 || off+4 > 64:
		return 0, fmt.Errorf("load at %d", off)
	case off == 0:
		return uint32(d.nr), nil
	case off == 4:
		return d.arch, nil
	case off < 16:
		return 0, nil // instruction_pointer, not simulated
	}
	a := d.args[(off-16)/8]
	if off%8 == 4 {
		return uint32(a >> 32), nil
	}
	return uint32(a), nil
}

// simulate runs p on d and returns the filter's return value and the instructions executed.
func simulate(p *seccomp.Program, d seccompData) (uint32, int, error) {
	var a, x uint32
	var mem [16]uint32
	for pc, steps := 0, 1; pc < len(p.Instructions()); pc, steps = pc+1, steps+1 {
		in := &p.Instructions()[pc]
		jump := func(cond bool) {
			if cond {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		}
		var err error
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			a, err = d.word(in.K)
		case unix.BPF_LD | unix.BPF_IMM:
			a = in.K
		case unix.BPF_LDX | unix.BPF_IMM:
			x = in.K
		case unix.BPF_LD | unix.BPF_MEM:
			a = mem[in.K&15]
		case unix.BPF_LDX | unix.BPF_MEM:
			x = mem[in.K&15]
		case unix.BPF_ST:
			mem[in.K&15] = a
		case unix.BPF_STX:
			mem[in.K&15] = x
		case unix.BPF_MISC | unix.BPF_TAX:
			x = a
		case unix.BPF_MISC | unix.BPF_TXA:
			a = x
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K:
			a &= in.K
		case unix.BPF_ALU | unix.BPF_OR | unix.BPF_K:
			a |= in.K
		case unix.BPF_JMP | unix.BPF_JA:
			pc += int(in.K)
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K:
			jump(a == in.K)
		case unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K:
			jump(a > in.K)
		case unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K:
			jump(a >= in.K)
		case unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K:
			jump(a&in.K != 0)
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_X:
			jump(a == x)
		case unix.BPF_JMP | unix.BPF_JGT | unix.BPF_X:
			jump(a > x)
		case unix.BPF_JMP | unix.BPF_JGE | unix.BPF_X:
			jump(a >= x)
		case unix.BPF_RET | unix.BPF_K:
			return in.K, steps, nil
		case unix.BPF_RET | unix.BPF_A:
			return a, steps, nil
		default:
			return 0, steps, fmt.Errorf("pc %d: opcode %#x not simulated", pc, in.Code)
		}
		if err != nil {
			return 0, steps, fmt.Errorf("pc %d: %w", pc, err)
		}
	}
	return 0, 0, fmt.Errorf("fell off the end of the program")
}

func errnoRet(e unix.Errno) uint32 { return retErrno | uint32(e) }

func mustSim(t *testing.T, p *seccomp.Program, nr uintptr, args ...uint64) uint32 {
	t.Helper()
	d := seccompData{nr: int32(nr), arch: auditArchX86_64}
	copy(d.args[:], args)
	r, _, err := simulate(p, d)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestDefaultArgumentSweep checks the argument filters of the compiled default program over wide
// ranges of values, including high bits the kernel truncates away.
func TestDefaultArgumentSweep(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("simulation uses x86-64 numbers")
	}
	p := compileDefault(t)
	rng := rand.New(rand.NewPCG(1, 2))
	highs := []uint64{0, 1 << 32, 0xffffffff00000000, 0x8000000000000000}

	// ioctl: EPERM exactly when the low 32 bits are TIOCSTI or TIOCLINUX.
	check := func(cmd uint64) {
		want := uint32(retAllow)
		if low := uint32(cmd); low == 0x5412 || low == 0x541c {
			want = errnoRet(unix.EPERM)
		}
		if got := mustSim(t, p, unix.SYS_IOCTL, 3, cmd); got != want {
			t.Fatalf("ioctl(%#x) = %#x, want %#x", cmd, got, want)
		}
	}
	for low := uint64(0); low < 1<<16; low++ {
		check(low | highs[low%4])
	}
	for range 200000 {
		check(rng.Uint64())
		check(uint64(rng.Uint32()))
	}

	// personality: only 0 and 0xffffffff pass, exactly.
	pers := func(v uint64) {
		want := errnoRet(unix.EPERM)
		if v == 0 || v == 0xffffffff {
			want = retAllow
		}
		if got := mustSim(t, p, unix.SYS_PERSONALITY, v); got != want {
			t.Fatalf("personality(%#x) = %#x, want %#x", v, got, want)
		}
	}
	for _, v := range []uint64{0, 0xffffffff, 1, 8, 0x20000, 0x40000, 0xfffffffe, 0x7fffffff, 0x80000000, 1 << 32, 1<<32 | 0xffffffff, ^uint64(0)} {
		pers(v)
	}
	for range 200000 {
		pers(uint64(rng.Uint32()))
		pers(rng.Uint64())
	}

	// clone and unshare: any namespace bit means EPERM, whatever else is set.
	const nsClone = 0x7e020000
	for range 200000 {
		flags := rng.Uint64() & 0xffffffff
		if rng.IntN(2) == 0 {
			flags &^= nsClone
		}
		want := uint32(retAllow)
		if flags&nsClone != 0 {
			want = errnoRet(unix.EPERM)
		}
		if got := mustSim(t, p, unix.SYS_CLONE, flags); got != want {
			t.Fatalf("clone(%#x) = %#x, want %#x", flags, got, want)
		}
		want = retAllow
		if flags&(nsClone|unix.CLONE_NEWTIME) != 0 {
			want = errnoRet(unix.EPERM)
		}
		if got := mustSim(t, p, unix.SYS_UNSHARE, flags); got != want {
			t.Fatalf("unshare(%#x) = %#x, want %#x", flags, got, want)
		}
	}

	// socket: the allowed combinations pass; everything else is refused (EPERM or ENOSYS).
	allowed := func(fam, typ, proto uint64) bool {
		// AF_UNIX and NETLINK_ROUTE are allowed whatever the type; inet types must be exact
		// apart from SOCK_NONBLOCK and SOCK_CLOEXEC.
		base, flags := typ&0xf, typ&^0xf
		inetTypeOK := flags&^uint64(unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC) == 0
		switch fam {
		case unix.AF_UNIX:
			return true
		case unix.AF_NETLINK:
			return proto == unix.NETLINK_ROUTE
		case unix.AF_INET, unix.AF_INET6:
			icmp := uint64(unix.IPPROTO_ICMP)
			if fam == unix.AF_INET6 {
				icmp = unix.IPPROTO_ICMPV6
			}
			return inetTypeOK && (base == unix.SOCK_STREAM && (proto == 0 || proto == unix.IPPROTO_TCP) ||
				base == unix.SOCK_DGRAM && (proto == 0 || proto == unix.IPPROTO_UDP || proto == icmp))
		}
		return false
	}
	types := []uint64{1, 2, 3, 5, 10, 1 | unix.SOCK_CLOEXEC, 2 | unix.SOCK_NONBLOCK, 3 | unix.SOCK_CLOEXEC | unix.SOCK_NONBLOCK, 1 | 1<<32, 0x100}
	protos := []uint64{0, 1, 6, 9, 15, 17, 58, 132, 136, 255, 256, 262, 262 | 1<<32, 1 << 32, ^uint64(0)}
	for fam := uint64(0); fam < 48; fam++ {
		for _, f := range []uint64{fam, fam | 1<<32} {
			for _, typ := range types {
				for _, proto := range protos {
					got := mustSim(t, p, unix.SYS_SOCKET, f, typ, proto)
					ok := got == retAllow
					if want := allowed(f, typ, proto); ok != want {
						t.Fatalf("socket(%#x, %#x, %#x) = %#x, want allowed=%v", f, typ, proto, got, want)
					}
					if !ok && got != errnoRet(unix.EPERM) && got != errnoRet(unix.ENOSYS) {
						t.Fatalf("socket(%#x, %#x, %#x) = %#x, want EPERM or ENOSYS", f, typ, proto, got)
					}
					if proto&0xffffffff == 262 && (f == unix.AF_INET || f == unix.AF_INET6) && got != errnoRet(unix.EPERM) {
						t.Fatalf("MPTCP socket(%#x, %#x, %#x) = %#x, want EPERM", f, typ, proto, got)
					}
				}
			}
		}
	}

	// Foreign ABIs die whatever they ask for; x32 numbers on the native arch too.
	for _, nr := range []int32{unix.SYS_GETPPID, 1, 20, 0x40000000 | 39} {
		arch := uint32(auditArchI386)
		if nr >= 0x40000000 {
			arch = auditArchX86_64
		}
		if r, _, err := simulate(p, seccompData{nr: nr, arch: arch}); err != nil || r&retActionFull != retKillProcess {
			t.Fatalf("arch %#x nr %#x = %#x, %v; want KILL_PROCESS", arch, nr, r, err)
		}
	}
}

// TestGetppidPathLength compares how many BPF instructions getppid walks under the default
// profile and under Docker's own (when its file is on this machine): the deterministic
// counterpart of BenchmarkGetppid.
func TestGetppidPathLength(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("simulation uses x86-64 numbers")
	}
	steps := func(p *seccomp.Program) int {
		r, n, err := simulate(p, seccompData{nr: unix.SYS_GETPPID, arch: auditArchX86_64})
		if err != nil || r != retAllow {
			t.Fatalf("getppid: %#x, %v", r, err)
		}
		return n
	}
	def := steps(compileDefault(t))
	t.Logf("getppid walks %d instructions under the Bulwark default", def)
	f := realDockerDefault()
	if f == "" {
		return
	}
	docker, err := Compile(parseFile(t, f))
	if err != nil {
		t.Fatal(err)
	}
	dock := steps(docker)
	t.Logf("getppid walks %d instructions under Docker's default", dock)
	if def > dock {
		t.Errorf("the Bulwark default walks %d instructions for getppid, Docker's %d", def, dock)
	}
}
