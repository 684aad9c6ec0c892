package sandbox

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/profiles"
	"bulwark.dev/bulwark/sandbox/internal/landlock"
	"bulwark.dev/bulwark/sandbox/internal/mac"
	"bulwark.dev/bulwark/sandbox/internal/memfdnoexec"
	"bulwark.dev/bulwark/sandbox/internal/seccomp"
	"bulwark.dev/bulwark/sandbox/setup"
)

// hostLayers is mac.Detect, kept once per process: the host's MAC layers do not change under a
// running runtime, and detection reads /proc and /sys (about a millisecond, twice per create). A
// caller that finds no reading kept detects the layers itself rather than wait for a detection
// under way (bulwark-runc's policy session detects them on a goroutine that may have lost its
// core halfway); the first reading made is kept and every caller gets that one.
func hostLayers() mac.Layers {
	if l := detectedLayers.Load(); l != nil {
		return *l
	}
	l := mac.Detect()
	detectedLayers.CompareAndSwap(nil, &l)
	return *detectedLayers.Load()
}

// detectedLayers is the reading hostLayers keeps.
var detectedLayers atomic.Pointer[mac.Layers]

// DetectHost reads the host's MAC layers now, for the floors this process will compute: a caller
// with a goroutine running beside its path (bulwark-runc's policy session) takes the reading off
// the floor's path; a floor that gets there first reads them itself, as before.
func DetectHost() { hostLayers() }

// checkMAC refuses to run on a host without any MAC layer unless the operator made the explicit,
// audited exception (Options.AllowNoMAC).
func (r *Runtime) checkMAC() error {
	if hostLayers().Any() {
		return nil
	}
	if r.opts.AllowNoMAC {
		r.event("", "floor.no-mac-exception", map[string]string{"reason": "Options.AllowNoMAC"})
		return nil
	}
	return floorErr("the host has no MAC layer (SELinux, AppArmor or Landlock ABI >= %d); set AllowNoMAC to run without one", landlock.MinABI)
}

// macLabels records the spec's AppArmor profile and SELinux labels that this host cannot apply.
// They are not refused: Docker names them only where the host has the layer, but other callers
// name them anyway, and the container is still confined by the layers the host has (checkMAC
// refuses a host with none). The effective spec drops them, so it shows what is enforced.
func (f *floor) macLabels() error {
	p, l := f.spec.Process, f.layers
	if p.ApparmorProfile != "" && !l.AppArmor {
		f.raise("process.apparmorProfile", p.ApparmorProfile, "not applied: host has no AppArmor; "+enforcedBy(l))
		p.ApparmorProfile = ""
	}
	if l.SELinux {
		return nil
	}
	if p.SelinuxLabel != "" {
		f.raise("process.selinuxLabel", p.SelinuxLabel, "not applied: host has no SELinux; "+enforcedBy(l))
		p.SelinuxLabel = ""
	}
	if f.spec.Linux.MountLabel != "" {
		f.raise("linux.mountLabel", f.spec.Linux.MountLabel, "not applied: host has no SELinux; "+enforcedBy(l))
		f.spec.Linux.MountLabel = ""
	}
	return nil
}

// enforcedBy names the MAC layers that confine the container instead.
func enforcedBy(l mac.Layers) string {
	names := map[string]string{"selinux": "SELinux", "apparmor": "AppArmor", "landlock": "Landlock"}
	var s []string
	for _, layer := range macLayers(l) {
		s = append(s, names[layer])
	}
	if len(s) == 0 {
		return "no MAC layer (operator exception AllowNoMAC)"
	}
	return strings.Join(s, ", ") + " enforced"
}

// compileProfile compiles a profile whose program is not cached: the helper bulwark-seccomp
// beside the runtime's binary, the only one linking libseccomp, unless the process compiles
// itself (CompileSeccompInProcess).
var compileProfile seccomp.Compiler = seccomp.Helper

// CompileSeccompInProcess has this process compile the seccomp profiles its cache does not hold
// with compile (seccompc.Compile, which links libseccomp) instead of executing bulwark-seccomp: for
// a test binary that is its own runtime, with no helper beside it. Call it before any runtime is
// used.
func CompileSeccompInProcess(compile func(*specs.LinuxSeccomp) (*seccomp.Program, error)) {
	compileProfile = compile
}

// LibseccompVersion is the libseccomp version the seccomp programs of this build are compiled
// with ("" when the build is unstamped: see seccomp.LibseccompVersion).
func LibseccompVersion() string { return seccomp.LibseccompVersion() }

// compileSeccomp returns the programs the child loads, in order: the floor's default allowlist
// always, then the spec's own profile (if any and different), stacked on top. Compiled programs
// are cached by profile digest under Options.SeccompCacheDir (<root>/seccomp-cache), which saves
// ~20 ms per start.
func (r *Runtime) compileSeccomp(spec *specs.LinuxSeccomp) ([]setup.SeccompBlob, error) {
	cache := r.opts.SeccompCacheDir
	if cache == "" {
		cache = filepath.Join(r.opts.Root, "seccomp-cache")
	}
	def, err := compileDefault(cache)
	if err != nil {
		return nil, fmt.Errorf("compile default seccomp profile: %w", err)
	}
	out := []setup.SeccompBlob{{Digest: def.Digest, Flags: def.Flags, BPF: def.Bytes()}}
	if !memfdNoexecSupported() {
		p, err := seccomp.CachedCompile(cache, noMemfdProfile, compileProfile)
		if err != nil {
			return nil, fmt.Errorf("compile memfd_create refusal: %w", err)
		}
		out = append(out, setup.SeccompBlob{Digest: p.Digest, Flags: p.Flags, BPF: p.Bytes()})
	}
	if spec != nil {
		p, err := seccomp.CachedCompile(cache, spec, compileProfile)
		if err != nil {
			return nil, fmt.Errorf("compile spec seccomp profile: %w", err)
		}
		if p.Digest != def.Digest {
			out = append(out, setup.SeccompBlob{Digest: p.Digest, Flags: p.Flags, BPF: p.Bytes()})
		}
	}
	return out, nil
}

// compileDefault returns the floor's default allowlist compiled: from the cache by the profile's
// known digest (defaultCompileDigest) when it is there, else resolved, digested, compiled and
// stored (CachedCompile). On a hit no start resolves, copies or digests the profile: nothing else
// on a start's path does (the floor's description of it is kept too: defaultPrograms).
func compileDefault(cache string) (*seccomp.Program, error) {
	if d, ok := defaultCompileDigest(profiles.DefaultSeccompSum()); ok {
		if p, ok := seccomp.Cached(cache, d); ok {
			return p, nil
		}
	}
	return seccomp.CachedCompile(cache, profiles.DefaultSeccomp(), compileProfile)
}

// defaultCompileDigests are profiles.SeccompDigest of the default allowlist resolved for each
// architecture, computed (by TestDefaultCompileDigests, which fails until they are updated) from
// the embedded profile whose SHA-256 is defaultProfileSum. The profile's rules depend on the
// architecture only (TestDefaultSeccompDescriptions refuses a minKernel rule).
var defaultCompileDigests = map[string]string{
	"amd64": "sha256:250af6e8513a2861758f1c9dfb79e3a2eb0c95815675c41658cba7affb0ad41e",
	"arm64": "sha256:a866520f69884721614aab1de856ed8ea92ecf61788a09a86664164201a4ebed",
}

// defaultCompileDigest is the default allowlist's digest from defaultCompileDigests when sum, the
// embedded profile's, is the one they were computed from; ok is false for any other profile or
// architecture.
func defaultCompileDigest(sum string) (digest string, ok bool) {
	if sum != defaultProfileSum {
		return "", false
	}
	digest, ok = defaultCompileDigests[runtime.GOARCH]
	return digest, ok
}

// noMemfdProfile refuses memfd_create where the kernel cannot make memfds non-executable (no
// vm.memfd_noexec, before Linux 6.3): an executable memfd would run bytes that are not in the
// image. ENOSYS, so callers fall back as they do on a kernel without memfds.
var noMemfdProfile = &specs.LinuxSeccomp{
	DefaultAction: specs.ActAllow,
	Syscalls: []specs.LinuxSyscall{{
		Names: []string{"memfd_create"}, Action: specs.ActErrno, ErrnoRet: &enosys,
	}},
}

var enosys = uint(unix.ENOSYS)

// memfdNoexecSupported is memfdnoexec.Supported (a test pretends an older kernel).
var memfdNoexecSupported = memfdnoexec.Supported

// raiseMemfdNoexec makes every memfd in the container's pid namespace non-executable before the
// container runs anything of its own (vm.memfd_noexec = 2; see internal/memfdnoexec). A kernel
// without the knob gets noMemfdProfile instead.
func raiseMemfdNoexec(pid int) error {
	if !memfdNoexecSupported() {
		return nil
	}
	return memfdnoexec.Raise(pid)
}

// minimalDevice reports whether a /dev path is one the floor provides anyway.
func minimalDevice(p string) bool {
	for _, d := range setup.MinimalDevices {
		if "/dev/"+d == p {
			return true
		}
	}
	return p == "/dev/ptmx" || p == "/dev/console"
}

var rlimitNumbers = map[string]int{
	"RLIMIT_AS": 9, "RLIMIT_CORE": 4, "RLIMIT_CPU": 0, "RLIMIT_DATA": 2, "RLIMIT_FSIZE": 1,
	"RLIMIT_LOCKS": 10, "RLIMIT_MEMLOCK": 8, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
	"RLIMIT_NOFILE": 7, "RLIMIT_NPROC": 6, "RLIMIT_RSS": 5, "RLIMIT_RTPRIO": 14,
	"RLIMIT_RTTIME": 15, "RLIMIT_SIGPENDING": 11, "RLIMIT_STACK": 3,
}

func rlimitNumber(name string) (int, bool) {
	n, ok := rlimitNumbers[name]
	return n, ok
}

func (r *Runtime) event(id, action string, attrs map[string]string) {
	if r.opts.Events != nil {
		r.opts.Events.Event(id, action, attrs)
	}
}
