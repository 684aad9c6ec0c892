package compiler

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/profiles"
	"bulwark.dev/bulwark/sandbox/internal/seccomp"
	"bulwark.dev/bulwark/sandbox/internal/seccomp/bpfload"
)

func dockerLike(t testing.TB) *specs.LinuxSeccomp {
	t.Helper()
	return parseFile(t, filepath.Join("..", "..", "..", "..", "profiles", "seccomp", "testdata", "docker-like.json"))
}

func TestCompileDefault(t *testing.T) {
	p := profiles.DefaultSeccomp()
	prog, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := profiles.SeccompDigest(p)
	if prog.Digest != want || prog.Len() == 0 || prog.Len() > bpfload.MaxInstructions || len(prog.Notes) != 0 || prog.Flags != 0 {
		t.Fatalf("program digest %s (want %s), %d instructions, notes %v, flags %#x", prog.Digest, want, prog.Len(), prog.Notes, prog.Flags)
	}
	again, err := Compile(profiles.DefaultSeccomp())
	if err != nil || again.Sum() != prog.Sum() {
		t.Fatalf("compiling twice gave different programs (%v)", err)
	}
	t.Logf("default profile: %d BPF instructions", prog.Len())
}

func TestCompileDockerLikeSkipsUnknownNames(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("fixture resolution is checked on amd64")
	}
	prog, err := Compile(dockerLike(t))
	if err != nil {
		t.Fatal(err)
	}
	// libseccomp 2.5.4 does not know mseal; newer releases do, and then there is nothing to note.
	if len(prog.Notes) > 1 || len(prog.Notes) == 1 && !strings.Contains(prog.Notes[0], `"mseal"`) {
		t.Fatalf("notes %v", prog.Notes)
	}
}

func TestCompileRefuses(t *testing.T) {
	one := uint(1)
	cases := map[string]*specs.LinuxSeccomp{
		"notify default": {DefaultAction: specs.ActNotify},
		"notify rule":    {DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActNotify}}},
		"listener":       {DefaultAction: specs.ActAllow, ListenerPath: "/run/x.sock"},
		"spec allow":     {DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagSpecAllow}},
		"bad arch":       {DefaultAction: specs.ActAllow, Architectures: []specs.Arch{"SCMP_ARCH_Z80"}},
		"bad op":         {DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_IN"}}}}},
		"bad index":      {DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 7, Op: specs.OpEqualTo}}}}},
		"bad action":     {DefaultAction: "SCMP_ACT_MAYBE", DefaultErrnoRet: &one},
	}
	for name, p := range cases {
		if _, err := Compile(p); err == nil {
			t.Errorf("%s: compiled, want an error", name)
		}
	}
	if _, err := Compile(nil); err == nil {
		t.Error("nil profile compiled")
	}
}

// TestCompileSameArgumentIsOr checks the Docker/runc convention the default profile relies on:
// several conditions on one argument are separate rules, not an impossible AND.
func TestCompileSameArgumentIsOr(t *testing.T) {
	or := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{
		Names: []string{"personality"}, Action: specs.ActErrno,
		Args: []specs.LinuxSeccompArg{{Index: 0, Value: 1, Op: specs.OpEqualTo}, {Index: 0, Value: 2, Op: specs.OpEqualTo}},
	}}}
	single := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{
		Names: []string{"personality"}, Action: specs.ActErrno,
		Args: []specs.LinuxSeccompArg{{Index: 0, Value: 1, Op: specs.OpEqualTo}},
	}}}
	a, err := Compile(or)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Compile(single)
	if err != nil {
		t.Fatal(err)
	}
	if a.Len() <= b.Len() {
		t.Fatalf("two OR'ed conditions gave %d instructions, one gave %d", a.Len(), b.Len())
	}
}

func TestCompileLogFlagAndArches(t *testing.T) {
	p := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Flags:         []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog},
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActAllow}},
	}
	prog, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	if prog.Flags == 0 {
		t.Fatal("SECCOMP_FILTER_FLAG_LOG lost")
	}
}

func TestFromBytes(t *testing.T) {
	prog := compileDefault(t)
	back, err := seccomp.FromBytes(prog.Digest, prog.Bytes())
	if err != nil || back.Sum() != prog.Sum() || back.Len() != prog.Len() {
		t.Fatalf("round trip: %v", err)
	}
	for _, bad := range [][]byte{nil, make([]byte, 7), make([]byte, 8*(bpfload.MaxInstructions+1))} {
		if _, err := seccomp.FromBytes("", bad); err == nil {
			t.Errorf("FromBytes accepted %d bytes", len(bad))
		}
	}
	if err := (&seccomp.Program{}).Load(); err == nil {
		t.Error("empty program loaded")
	}
	if !slices.Equal(back.Bytes(), prog.Bytes()) {
		t.Fatal("bytes differ")
	}
}

// realDockerDefault returns Docker's own default profile from the Go module cache
// (github.com/moby/profiles/seccomp), or "" when it is not there. It is read in place, not copied.
// realProfiles returns the profiles Docker and Podman ship, where present; it skips t if none is.
func realProfiles(t *testing.T) []string {
	t.Helper()
	var files []string
	if f := realDockerDefault(); f != "" {
		files = append(files, f)
	}
	if _, err := os.Stat("/usr/share/containers/seccomp.json"); err == nil {
		files = append(files, "/usr/share/containers/seccomp.json")
	}
	if len(files) == 0 {
		t.Skip("no Docker or containers/common profile on this machine")
	}
	return files
}

func realDockerDefault() string {
	modcache := os.Getenv("GOMODCACHE")
	if modcache == "" {
		if gp := os.Getenv("GOPATH"); gp != "" {
			modcache = filepath.Join(gp, "pkg", "mod")
		} else if home, err := os.UserHomeDir(); err == nil {
			modcache = filepath.Join(home, "go", "pkg", "mod")
		}
	}
	m, _ := filepath.Glob(filepath.Join(modcache, "github.com", "moby", "profiles", "seccomp@*", "default.json"))
	if len(m) == 0 {
		return ""
	}
	return m[len(m)-1]
}

func parseFile(t testing.TB, path string) *specs.LinuxSeccomp {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := profiles.ParseDockerSeccomp(data)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCompileRealProfiles compiles the profiles Docker and Podman ship, where present: names this
// libseccomp does not know are skipped with a note, exactly as Docker does.
func TestCompileRealProfiles(t *testing.T) {
	for _, f := range realProfiles(t) {
		prog, err := Compile(parseFile(t, f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, n := range prog.Notes {
			if !strings.Contains(n, "unknown to libseccomp") {
				t.Errorf("%s: unexpected note %q", f, n)
			}
		}
		t.Logf("%s: %d instructions, %d names skipped", f, prog.Len(), len(prog.Notes))
	}
}
