package profiles

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ErrBadProfile is wrapped by every error about a malformed seccomp profile.
var ErrBadProfile = errors.New("malformed seccomp profile")

// dockerProfile is Docker's seccomp profile format (moby/profiles/seccomp), plus the symbolic
// "defaultErrno"/"errno" names that containers/common (Podman) writes beside the numbers. Unknown
// fields are rejected: a misspelt "excludes" silently widening a security profile is worse than
// an error.
type dockerProfile struct {
	DefaultAction    specs.LinuxSeccompAction `json:"defaultAction"`
	DefaultErrnoRet  *uint                    `json:"defaultErrnoRet,omitempty"`
	DefaultErrno     string                   `json:"defaultErrno,omitempty"`
	Architectures    []specs.Arch             `json:"architectures,omitempty"`
	ArchMap          []dockerArch             `json:"archMap,omitempty"`
	Flags            []specs.LinuxSeccompFlag `json:"flags,omitempty"`
	ListenerPath     string                   `json:"listenerPath,omitempty"`
	ListenerMetadata string                   `json:"listenerMetadata,omitempty"`
	Syscalls         []dockerSyscall          `json:"syscalls"`
	Comment          string                   `json:"comment,omitempty"`
}

type dockerArch struct {
	Arch      specs.Arch   `json:"architecture"`
	SubArches []specs.Arch `json:"subArchitectures"`
}

type dockerFilter struct {
	Caps      []string `json:"caps,omitempty"`
	Arches    []string `json:"arches,omitempty"`
	MinKernel string   `json:"minKernel,omitempty"`
}

type dockerSyscall struct {
	Name     string                   `json:"name,omitempty"` // deprecated single-name form
	Names    []string                 `json:"names,omitempty"`
	Action   specs.LinuxSeccompAction `json:"action"`
	ErrnoRet *uint                    `json:"errnoRet,omitempty"`
	Errno    string                   `json:"errno,omitempty"`
	Args     []specs.LinuxSeccompArg  `json:"args,omitempty"`
	Comment  string                   `json:"comment,omitempty"`
	Includes *dockerFilter            `json:"includes,omitempty"`
	Excludes *dockerFilter            `json:"excludes,omitempty"`
}

// ParseOptions say for which container a Docker profile's conditional rules are resolved.
type ParseOptions struct {
	// Caps is the container's bounding set ("CAP_CHOWN", …). Rules included only with a capability
	// need every listed one; rules excluded by a capability go if any listed one is present.
	Caps []string
	// GOARCH selects archMap entries and includes/excludes.arches; empty means runtime.GOARCH.
	GOARCH string
	// Kernel is the "major.minor" release compared with includes.minKernel; empty means uname.
	Kernel string
}

// ParseDockerSeccomp parses a profile in Docker's JSON format for a container with no capabilities
// on this machine's architecture and kernel. That is the strictest resolution, and Bulwark stacks
// the result on top of its own floor, so resolving conservatively loses nothing.
func ParseDockerSeccomp(data []byte) (*specs.LinuxSeccomp, error) {
	return ParseDockerSeccompWith(data, ParseOptions{})
}

// ParseDockerSeccompWith is ParseDockerSeccomp with explicit resolution options. Syscall names are
// not checked here (that needs libseccomp's table); the compiler skips unknown names with a note,
// as Docker does.
func ParseDockerSeccompWith(data []byte, opts ParseOptions) (*specs.LinuxSeccomp, error) {
	dp, err := decodeDocker(data)
	if err != nil {
		return nil, err
	}
	return resolveDocker(dp, opts)
}

// decodeDocker decodes a profile in Docker's JSON format, refusing unknown fields.
func decodeDocker(data []byte) (*dockerProfile, error) {
	var dp dockerProfile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&dp); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadProfile, describeJSONError(data, err))
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the profile object", ErrBadProfile)
	}
	return &dp, nil
}

// resolveDocker checks a decoded Docker profile and resolves it for opts.
func resolveDocker(dp *dockerProfile, opts ParseOptions) (*specs.LinuxSeccomp, error) {
	goarch := opts.GOARCH
	if goarch == "" {
		goarch = runtime.GOARCH
	}
	kernel := opts.Kernel
	if kernel == "" {
		kernel = unameRelease()
	}

	defErrno, err := mergeErrno("defaultErrno", dp.DefaultErrnoRet, dp.DefaultErrno)
	if err != nil {
		return nil, err
	}
	out := &specs.LinuxSeccomp{
		DefaultAction:    dp.DefaultAction,
		DefaultErrnoRet:  defErrno,
		Flags:            dp.Flags,
		ListenerPath:     dp.ListenerPath,
		ListenerMetadata: dp.ListenerMetadata,
	}
	if err := checkAction("defaultAction", dp.DefaultAction, defErrno); err != nil {
		return nil, err
	}
	arches, err := resolveArches(*dp, goarch)
	if err != nil {
		return nil, err
	}
	out.Architectures = arches
	for _, f := range dp.Flags {
		if !slices.Contains(knownFlags, f) {
			return nil, fmt.Errorf("%w: unknown flag %q", ErrBadProfile, f)
		}
	}

	for i, sc := range dp.Syscalls {
		where := fmt.Sprintf("syscalls[%d]", i)
		names := sc.Names
		switch {
		case sc.Name != "" && len(sc.Names) > 0:
			return nil, fmt.Errorf("%w: %s: both 'name' and 'names' given; use 'names'", ErrBadProfile, where)
		case sc.Name != "":
			names = []string{sc.Name}
		case len(names) == 0:
			return nil, fmt.Errorf("%w: %s: no syscall names", ErrBadProfile, where)
		}
		for _, n := range names {
			if n == "" || strings.ContainsFunc(n, func(r rune) bool { return !(r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') }) {
				return nil, fmt.Errorf("%w: %s: bad syscall name %q", ErrBadProfile, where, n)
			}
		}
		errnoRet, err := mergeErrno(where+".errno", sc.ErrnoRet, sc.Errno)
		if err != nil {
			return nil, err
		}
		if err := checkAction(where+".action", sc.Action, errnoRet); err != nil {
			return nil, err
		}
		if err := checkArgs(where, sc.Args); err != nil {
			return nil, err
		}
		keep, err := applies(sc, opts.Caps, goarch, kernel)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrBadProfile, where, err)
		}
		if !keep {
			continue
		}
		out.Syscalls = append(out.Syscalls, specs.LinuxSyscall{
			Names:    slices.Clone(names),
			Action:   sc.Action,
			ErrnoRet: errnoRet,
			Args:     slices.Clone(sc.Args),
		})
	}
	return out, nil
}

var knownActions = []specs.LinuxSeccompAction{
	specs.ActKill, specs.ActKillProcess, specs.ActKillThread, specs.ActTrap, specs.ActErrno,
	specs.ActTrace, specs.ActAllow, specs.ActLog, specs.ActNotify,
}

var knownOps = []specs.LinuxSeccompOperator{
	specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
	specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual,
}

var knownFlags = []specs.LinuxSeccompFlag{
	specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagWaitKillableRecv,
}

var knownArches = []specs.Arch{
	specs.ArchX86, specs.ArchX86_64, specs.ArchX32, specs.ArchARM, specs.ArchAARCH64,
	specs.ArchMIPS, specs.ArchMIPS64, specs.ArchMIPS64N32, specs.ArchMIPSEL, specs.ArchMIPSEL64,
	specs.ArchMIPSEL64N32, specs.ArchPPC, specs.ArchPPC64, specs.ArchPPC64LE, specs.ArchS390,
	specs.ArchS390X, specs.ArchPARISC, specs.ArchPARISC64, specs.ArchRISCV64, specs.ArchLOONGARCH64,
}

// nativeSeccompArch maps GOARCH to the seccomp architecture of its native ABI.
var nativeSeccompArch = map[string]specs.Arch{
	"386": specs.ArchX86, "amd64": specs.ArchX86_64, "arm": specs.ArchARM, "arm64": specs.ArchAARCH64,
	"mips": specs.ArchMIPS, "mipsle": specs.ArchMIPSEL, "mips64": specs.ArchMIPS64,
	"mips64le": specs.ArchMIPSEL64, "ppc64": specs.ArchPPC64, "ppc64le": specs.ArchPPC64LE,
	"s390x": specs.ArchS390X, "riscv64": specs.ArchRISCV64, "loong64": specs.ArchLOONGARCH64,
}

func checkAction(where string, a specs.LinuxSeccompAction, errnoRet *uint) error {
	if !slices.Contains(knownActions, a) {
		return fmt.Errorf("%w: %s: unknown action %q", ErrBadProfile, where, a)
	}
	if errnoRet != nil {
		if a != specs.ActErrno && a != specs.ActTrace {
			return fmt.Errorf("%w: %s: errnoRet is only meaningful with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not %s", ErrBadProfile, where, a)
		}
		// The kernel carries the errno in the 16-bit data field of the filter's return value.
		if *errnoRet > 0xffff {
			return fmt.Errorf("%w: %s: errnoRet %d does not fit in 16 bits", ErrBadProfile, where, *errnoRet)
		}
	}
	return nil
}

// mergeErrno combines a numeric errno with its symbolic name ("EPERM"); given both, they must agree.
func mergeErrno(where string, num *uint, name string) (*uint, error) {
	if name == "" {
		return num, nil
	}
	v, ok := errnoByName(name)
	if !ok {
		return nil, fmt.Errorf("%w: %s: unknown errno name %q", ErrBadProfile, where, name)
	}
	if num != nil && *num != v {
		return nil, fmt.Errorf("%w: %s: %q is %d but the numeric value says %d", ErrBadProfile, where, name, v, *num)
	}
	return &v, nil
}

func errnoByName(name string) (uint, bool) {
	// ErrnoName knows one name per number; these are the aliases it does not return.
	aliases := map[string]unix.Errno{"EWOULDBLOCK": unix.EAGAIN, "EDEADLOCK": unix.EDEADLK, "ENOTSUP": unix.EOPNOTSUPP}
	if e, ok := aliases[name]; ok {
		return uint(e), true
	}
	for e := unix.Errno(1); e < 4096; e++ {
		if unix.ErrnoName(e) == name {
			return uint(e), true
		}
	}
	return 0, false
}

func checkArgs(where string, args []specs.LinuxSeccompArg) error {
	for j, a := range args {
		if a.Index > 5 {
			return fmt.Errorf("%w: %s.args[%d]: index %d out of range 0..5", ErrBadProfile, where, j, a.Index)
		}
		if !slices.Contains(knownOps, a.Op) {
			return fmt.Errorf("%w: %s.args[%d]: unknown op %q", ErrBadProfile, where, j, a.Op)
		}
		if a.ValueTwo != 0 && a.Op != specs.OpMaskedEqual {
			return fmt.Errorf("%w: %s.args[%d]: valueTwo is only used by SCMP_CMP_MASKED_EQ", ErrBadProfile, where, j)
		}
	}
	return nil
}

// resolveArches follows Docker: an archMap entry for the native architecture yields it plus its
// sub-architectures; a plain "architectures" list is taken as written; both at once is an error.
func resolveArches(dp dockerProfile, goarch string) ([]specs.Arch, error) {
	if len(dp.Architectures) > 0 && len(dp.ArchMap) > 0 {
		return nil, fmt.Errorf("%w: both 'architectures' and 'archMap' given; use one", ErrBadProfile)
	}
	for _, a := range dp.Architectures {
		if !slices.Contains(knownArches, a) {
			return nil, fmt.Errorf("%w: unknown architecture %q", ErrBadProfile, a)
		}
	}
	if len(dp.ArchMap) == 0 {
		return slices.Clone(dp.Architectures), nil
	}
	native, ok := nativeSeccompArch[goarch]
	if !ok {
		return nil, fmt.Errorf("%w: no seccomp architecture known for GOARCH %q", ErrBadProfile, goarch)
	}
	var out []specs.Arch
	for i, m := range dp.ArchMap {
		for _, a := range append([]specs.Arch{m.Arch}, m.SubArches...) {
			if !slices.Contains(knownArches, a) {
				return nil, fmt.Errorf("%w: archMap[%d]: unknown architecture %q", ErrBadProfile, i, a)
			}
		}
		if m.Arch == native {
			out = append(append(out, m.Arch), m.SubArches...)
		}
	}
	return out, nil
}

// applies resolves a rule's includes/excludes the way Docker does.
func applies(sc dockerSyscall, caps []string, goarch, kernel string) (bool, error) {
	if inc := sc.Includes; inc != nil {
		if len(inc.Arches) > 0 && !slices.Contains(inc.Arches, goarch) {
			return false, nil
		}
		for _, c := range inc.Caps {
			if !slices.Contains(caps, c) {
				return false, nil
			}
		}
		if inc.MinKernel != "" {
			ok, err := kernelAtLeast(kernel, inc.MinKernel)
			if err != nil || !ok {
				return false, err
			}
		}
	}
	if exc := sc.Excludes; exc != nil {
		if slices.Contains(exc.Arches, goarch) {
			return false, nil
		}
		for _, c := range exc.Caps {
			if slices.Contains(caps, c) {
				return false, nil
			}
		}
		if exc.MinKernel != "" {
			return false, errors.New("excludes.minKernel is not supported (Docker does not support it either)")
		}
	}
	return true, nil
}

// kernelAtLeast compares "major.minor" prefixes of two release strings.
func kernelAtLeast(release, min string) (bool, error) {
	want, err := majorMinor(min)
	if err != nil {
		return false, fmt.Errorf("includes.minKernel: %v", err)
	}
	have, err := majorMinor(release)
	if err != nil {
		return false, fmt.Errorf("kernel release: %v", err)
	}
	return have[0] > want[0] || have[0] == want[0] && have[1] >= want[1], nil
}

func majorMinor(s string) ([2]int, error) {
	var out [2]int
	parts := strings.SplitN(s, ".", 3)
	if len(parts) < 2 {
		return out, fmt.Errorf("version %q is not major.minor", s)
	}
	for i := range 2 {
		num := parts[i]
		// Releases look like "6.18" or "6.18-rc1" or "6.1.0-18-amd64": keep the leading digits.
		if end := strings.IndexFunc(num, func(r rune) bool { return r < '0' || r > '9' }); end >= 0 {
			num = num[:end]
		}
		n, err := strconv.Atoi(num)
		if err != nil {
			return out, fmt.Errorf("version %q is not major.minor", s)
		}
		out[i] = n
	}
	return out, nil
}

func unameRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

// describeJSONError adds line:column to JSON errors so an operator can find the fault.
func describeJSONError(data []byte, err error) string {
	var off int64 = -1
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	if off < 0 || off > int64(len(data)) {
		return err.Error()
	}
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	col := off - int64(bytes.LastIndexByte(data[:off], '\n'))
	return fmt.Sprintf("line %d column %d: %v", line, col, err)
}
