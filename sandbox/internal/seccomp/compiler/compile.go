//go:build cgo

package compiler

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/profiles"
	"bulwark.dev/bulwark/sandbox/internal/seccomp"
)

// Compile turns a profile into a raw BPF program: libseccomp resolves and checks the rules, and
// the compact emitter (emit.go) writes the program with libseccomp's semantics in a fraction of its
// instructions; where the emitter declines, libseccomp's own program is exported. It runs in the
// runtime's parent process (cgo); the result is plain data the init loads without cgo.
//
// Bulwark-specific choices: the filter holds the native architecture plus any the profile names,
// and every other ABI (i386 through int 0x80, x32) kills the process; rules are added in Docker's
// and runc's way (several conditions on one argument mean OR, unknown syscall names are skipped
// with a note).
func Compile(p *specs.LinuxSeccomp) (*seccomp.Program, error) {
	native, err := libseccomp.GetNativeArch()
	if err != nil {
		return nil, fmt.Errorf("compile seccomp: native architecture: %w", err)
	}
	prog, _, err := compileFor(p, native, true)
	return prog, err
}

// compileFor compiles p for the target architecture (the native one but in tests): the compact
// emitter's program when compact is set and the emitter handles the profile, else libseccomp's.
// It returns the rules it gave both, resolved for target.
func compileFor(p *specs.LinuxSeccomp, target libseccomp.ScmpArch, compact bool) (*seccomp.Program, *ruleSet, error) {
	if p == nil {
		return nil, nil, errors.New("compile seccomp: nil profile")
	}
	digest, err := profiles.SeccompDigest(p)
	if err != nil {
		return nil, nil, err
	}
	var notes []string
	flags, err := filterFlags(p.Flags)
	if err != nil {
		return nil, nil, err
	}
	if p.ListenerPath != "" || p.DefaultAction == specs.ActNotify {
		return nil, nil, errors.New("compile seccomp: user notification (SCMP_ACT_NOTIFY, listenerPath) is not supported")
	}
	def, err := toAction(p.DefaultAction, p.DefaultErrnoRet)
	if err != nil {
		return nil, nil, fmt.Errorf("compile seccomp: defaultAction: %w", err)
	}
	f, err := libseccomp.NewFilter(def)
	if err != nil {
		return nil, nil, fmt.Errorf("compile seccomp: new filter: %w", err)
	}
	defer f.Release()
	rs := newRuleSet(target, def)
	if native, _ := libseccomp.GetNativeArch(); native != target {
		// Tests compile for another architecture: the filter holds that one instead.
		if err := f.AddArch(target); err != nil {
			return nil, nil, fmt.Errorf("compile seccomp: add architecture %v: %w", target, err)
		}
		if err := f.RemoveArch(native); err != nil {
			return nil, nil, fmt.Errorf("compile seccomp: remove architecture %v: %w", native, err)
		}
	}
	// The choices below shape the program beyond what the profile says: changing any of them
	// must bump cacheFormat, or old cached programs would be served for the new compiler.
	if err := f.SetBadArchAction(libseccomp.ActKillProcess); err != nil {
		return nil, nil, fmt.Errorf("compile seccomp: bad-arch action: %w", err)
	}
	// The init sets no_new_privs itself; the exported program must not depend on libseccomp's
	// load-time side effects, since libseccomp never loads it.
	if err := f.SetNoNewPrivsBit(false); err != nil {
		return nil, nil, fmt.Errorf("compile seccomp: nnp bit: %w", err)
	}
	// Where the compact emitter declines: a binary tree over syscall numbers (getppid walked 14
	// instructions of the default program instead of 113 with libseccomp's linear layout).
	if err := f.SetOptimize(2); err != nil {
		return nil, nil, fmt.Errorf("compile seccomp: optimize level 2: %w", err)
	}
	for _, a := range p.Architectures {
		arch, err := libseccomp.GetArchFromString(strings.TrimPrefix(string(a), "SCMP_ARCH_"))
		if err != nil {
			return nil, nil, fmt.Errorf("compile seccomp: architecture %q: %w", a, err)
		}
		present, err := f.IsArchPresent(arch)
		if err != nil {
			return nil, nil, fmt.Errorf("compile seccomp: architecture %q: %w", a, err)
		}
		if present {
			continue
		}
		rs.declined = fmt.Errorf("%w: architecture %s besides %v", errDecline, a, target)
		if err := f.AddArch(arch); err != nil {
			return nil, nil, fmt.Errorf("compile seccomp: add architecture %q: %w", a, err)
		}
	}
	for i, sc := range p.Syscalls {
		n, err := addRule(f, rs, target, def, sc)
		if err != nil {
			return nil, nil, fmt.Errorf("compile seccomp: syscalls[%d] (%s): %w", i, strings.Join(sc.Names, ","), err)
		}
		notes = append(notes, n...)
	}
	if !compact {
		rs.declined = errDecline
	}
	prog, err := program(digest, f, rs)
	if err != nil {
		return nil, nil, err
	}
	prog.Notes = notes
	prog.Flags = flags
	return prog, rs, nil
}

// program is the compact emitter's program for rs, or libseccomp's for f when the emitter declines.
func program(digest string, f *libseccomp.ScmpFilter, rs *ruleSet) (*seccomp.Program, error) {
	insns, err := emitCompact(rs)
	if err == nil {
		return seccomp.FromInstructions(digest, insns), nil
	}
	if !errors.Is(err, errDecline) {
		return nil, fmt.Errorf("compile seccomp: %w", err)
	}
	rs.declined = err
	raw, err := exportBPF(f)
	if err != nil {
		return nil, err
	}
	return seccomp.FromBytes(digest, raw)
}

// newRuleSet starts the plain-data copy of what Compile gives libseccomp for target.
func newRuleSet(target libseccomp.ScmpArch, def libseccomp.ScmpAction) *ruleSet {
	rs := &ruleSet{badArch: unix.SECCOMP_RET_KILL_PROCESS, def: retValue(def), calls: map[uint32][]argRule{}}
	switch target {
	case libseccomp.ArchAMD64:
		rs.auditArch, rs.x32Kill = unix.AUDIT_ARCH_X86_64, true
	case libseccomp.ArchARM64:
		rs.auditArch = unix.AUDIT_ARCH_AARCH64
	default:
		rs.declined = fmt.Errorf("%w: architecture %v", errDecline, target)
	}
	return rs
}

// retValue is the seccomp return value of a libseccomp action (libseccomp-golang's toNative).
func retValue(a libseccomp.ScmpAction) uint32 {
	code := uint32(a) >> 16
	switch a & 0xffff {
	case libseccomp.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS
	case libseccomp.ActTrap:
		return unix.SECCOMP_RET_TRAP
	case libseccomp.ActErrno:
		return unix.SECCOMP_RET_ERRNO | code
	case libseccomp.ActTrace:
		return unix.SECCOMP_RET_TRACE | code
	case libseccomp.ActLog:
		return unix.SECCOMP_RET_LOG
	case libseccomp.ActAllow:
		return unix.SECCOMP_RET_ALLOW
	}
	return unix.SECCOMP_RET_KILL_THREAD
}

// addRule adds one profile rule for each of its names (to f, and to rs for the compact emitter)
// and returns notes for skipped names.
func addRule(f *libseccomp.ScmpFilter, rs *ruleSet, target libseccomp.ScmpArch, def libseccomp.ScmpAction, sc specs.LinuxSyscall) ([]string, error) {
	if sc.Action == specs.ActNotify {
		return nil, errors.New("SCMP_ACT_NOTIFY is not supported")
	}
	act, err := toAction(sc.Action, sc.ErrnoRet)
	if err != nil {
		return nil, err
	}
	// libseccomp refuses rules whose action is the default; they change nothing.
	if act == def {
		return nil, nil
	}
	conds := make([]libseccomp.ScmpCondition, 0, len(sc.Args))
	plain := make([]argCond, 0, len(sc.Args))
	perArg := map[uint]int{}
	for _, a := range sc.Args {
		c, err := toCondition(a)
		if err != nil {
			return nil, err
		}
		conds = append(conds, c)
		plain = append(plain, argCond{arg: a.Index, op: a.Op, v: a.Value, v2: a.ValueTwo})
		perArg[a.Index]++
	}
	// Docker's and runc's convention: libseccomp cannot AND two compares of one argument, so
	// several conditions on the same argument are separate rules (an OR).
	orEach := false
	for _, n := range perArg {
		orEach = orEach || n > 1
	}
	var notes []string
	for _, name := range sc.Names {
		call, err := libseccomp.GetSyscallFromName(name)
		if err != nil {
			notes = append(notes, fmt.Sprintf("syscall %q unknown to libseccomp %s: rule skipped", name, LibraryVersion()))
			continue
		}
		nr := int32(-1)
		if n, err := libseccomp.GetSyscallFromNameByArch(name, target); err == nil {
			nr = int32(n)
		}
		switch {
		case len(conds) == 0:
			err = f.AddRule(call, act)
			rs.add(nr, retValue(act), nil)
		case orEach:
			for i, c := range conds {
				if err = f.AddRuleConditional(call, act, []libseccomp.ScmpCondition{c}); err != nil {
					break
				}
				rs.add(nr, retValue(act), plain[i:i+1])
			}
		default:
			err = f.AddRuleConditional(call, act, conds)
			rs.add(nr, retValue(act), plain)
		}
		if err != nil {
			return nil, fmt.Errorf("add rule for %s: %w", name, err)
		}
	}
	return notes, nil
}

func toAction(a specs.LinuxSeccompAction, errnoRet *uint) (libseccomp.ScmpAction, error) {
	ret := int16(unix.EPERM)
	if errnoRet != nil {
		if *errnoRet > 0x7fff {
			return libseccomp.ActInvalid, fmt.Errorf("errnoRet %d out of range", *errnoRet)
		}
		ret = int16(*errnoRet)
	}
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return libseccomp.ActKillThread, nil
	case specs.ActKillProcess:
		return libseccomp.ActKillProcess, nil
	case specs.ActTrap:
		return libseccomp.ActTrap, nil
	case specs.ActErrno:
		return libseccomp.ActErrno.SetReturnCode(ret), nil
	case specs.ActTrace:
		return libseccomp.ActTrace.SetReturnCode(ret), nil
	case specs.ActAllow:
		return libseccomp.ActAllow, nil
	case specs.ActLog:
		return libseccomp.ActLog, nil
	}
	return libseccomp.ActInvalid, fmt.Errorf("unsupported action %q", a)
}

func toCondition(a specs.LinuxSeccompArg) (libseccomp.ScmpCondition, error) {
	ops := map[specs.LinuxSeccompOperator]libseccomp.ScmpCompareOp{
		specs.OpNotEqual:     libseccomp.CompareNotEqual,
		specs.OpLessThan:     libseccomp.CompareLess,
		specs.OpLessEqual:    libseccomp.CompareLessOrEqual,
		specs.OpEqualTo:      libseccomp.CompareEqual,
		specs.OpGreaterEqual: libseccomp.CompareGreaterEqual,
		specs.OpGreaterThan:  libseccomp.CompareGreater,
		specs.OpMaskedEqual:  libseccomp.CompareMaskedEqual,
	}
	op, ok := ops[a.Op]
	if !ok {
		return libseccomp.ScmpCondition{}, fmt.Errorf("unsupported operator %q", a.Op)
	}
	if a.Op == specs.OpMaskedEqual {
		// OCI and Docker: (arg & value) == valueTwo; libseccomp takes the mask first.
		return libseccomp.MakeCondition(a.Index, op, a.Value, a.ValueTwo)
	}
	return libseccomp.MakeCondition(a.Index, op, a.Value)
}

func filterFlags(fl []specs.LinuxSeccompFlag) (uint, error) {
	var out uint
	for _, f := range fl {
		switch f {
		case specs.LinuxSeccompFlagLog:
			out |= unix.SECCOMP_FILTER_FLAG_LOG
		default:
			// SPEC_ALLOW would turn off the Speculative Store Bypass mitigation; waitkill only
			// matters for user notification, which is not supported.
			return 0, fmt.Errorf("compile seccomp: flag %q is not allowed", f)
		}
	}
	return out, nil
}

// exportBPF writes the filter into a memfd (libseccomp 2.5 has no in-memory export) and reads it back.
func exportBPF(f *libseccomp.ScmpFilter) ([]byte, error) {
	fd, err := unix.MemfdCreate("bulwark-seccomp-bpf", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("compile seccomp: memfd_create: %w", err)
	}
	mf := os.NewFile(uintptr(fd), "bulwark-seccomp-bpf")
	defer mf.Close()
	if err := f.ExportBPF(mf); err != nil {
		return nil, fmt.Errorf("compile seccomp: export BPF: %w", err)
	}
	if _, err := mf.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("compile seccomp: rewind memfd: %w", err)
	}
	raw, err := io.ReadAll(mf)
	if err != nil {
		return nil, fmt.Errorf("compile seccomp: read BPF: %w", err)
	}
	return raw, nil
}

// LibraryVersion is the version of the libseccomp this binary links: part of the cache key
// (another libseccomp may compile a profile to another program).
func LibraryVersion() string {
	maj, min, mic := libseccomp.GetLibraryVersion()
	return fmt.Sprintf("%d.%d.%d", maj, min, mic)
}
