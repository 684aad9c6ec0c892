package profiles

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/bits"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestDefaultSeccompShape(t *testing.T) {
	p := DefaultSeccomp()
	if p.DefaultAction != specs.ActErrno || p.DefaultErrnoRet == nil || *p.DefaultErrnoRet != 38 {
		t.Fatalf("default action = %s/%v, want SCMP_ACT_ERRNO with ENOSYS (38)", p.DefaultAction, p.DefaultErrnoRet)
	}
	if native, ok := nativeSeccompArch[runtime.GOARCH]; ok && !slices.Equal(p.Architectures, []specs.Arch{native}) {
		t.Fatalf("architectures = %v, want only the native %s (no i386/x32)", p.Architectures, native)
	}
	if len(p.Flags) != 0 || p.ListenerPath != "" {
		t.Fatalf("unexpected flags/listener: %v %q", p.Flags, p.ListenerPath)
	}
	// DefaultSeccomp must hand out independent copies: the core mutates specs.
	q := DefaultSeccomp()
	q.Syscalls[0].Names[0] = "changed"
	if DefaultSeccomp().Syscalls[0].Names[0] == "changed" {
		t.Fatal("DefaultSeccomp returns shared state")
	}
}

// rulesFor returns the rules naming sys, by action and errno.
func rulesFor(p *specs.LinuxSeccomp, sys string) []specs.LinuxSyscall {
	var out []specs.LinuxSyscall
	for _, r := range p.Syscalls {
		if slices.Contains(r.Names, sys) {
			out = append(out, r)
		}
	}
	return out
}

func errnoOf(r specs.LinuxSyscall) uint {
	if r.ErrnoRet == nil {
		return 1
	}
	return *r.ErrnoRet
}

func TestDefaultSeccompBlocksIssueList(t *testing.T) {
	p := DefaultSeccomp()
	eperm := strings.Fields(`open_by_handle_at name_to_handle_at keyctl add_key request_key bpf userfaultfd
		perf_event_open kexec_load kexec_file_load init_module finit_module delete_module mount umount2 fsopen
		fsmount move_mount open_tree mount_setattr pivot_root setns ptrace process_vm_readv process_vm_writev
		acct swapon swapoff reboot iopl ioperm`)
	for _, s := range eperm {
		rs := rulesFor(p, s)
		if len(rs) != 1 || rs[0].Action != specs.ActErrno || errnoOf(rs[0]) != 1 || len(rs[0].Args) != 0 {
			t.Errorf("%s: rules %+v, want exactly one unconditional EPERM rule", s, rs)
		}
	}
	for _, s := range []string{"clone3", "io_uring_setup"} {
		rs := rulesFor(p, s)
		if len(rs) != 1 || rs[0].Action != specs.ActErrno || errnoOf(rs[0]) != 38 {
			t.Errorf("%s: rules %+v, want ENOSYS so libc falls back", s, rs)
		}
	}
	// No syscall may have an unconditional allow next to other rules: libseccomp lets the
	// unconditional rule win, which would silently drop the argument filters.
	seen := map[string]int{}
	for _, r := range p.Syscalls {
		for _, n := range r.Names {
			seen[n]++
		}
	}
	for _, r := range p.Syscalls {
		if len(r.Args) > 0 {
			continue
		}
		for _, n := range r.Names {
			if seen[n] > 1 {
				t.Errorf("%s has an unconditional rule and other rules", n)
			}
		}
	}
}

// masked is one SCMP_CMP_MASKED_EQ condition: (arg & m) == v.
type masked struct{ m, v uint64 }

func maskedConds(t *testing.T, r specs.LinuxSyscall, idx uint) []masked {
	t.Helper()
	var out []masked
	for _, a := range r.Args {
		if a.Index != idx {
			t.Fatalf("%v: condition on argument %d, want %d", r.Names, a.Index, idx)
		}
		if a.Op == specs.OpMaskedEqual {
			if a.ValueTwo&^a.Value != 0 {
				t.Fatalf("%v: value %#x has bits outside mask %#x", r.Names, a.ValueTwo, a.Value)
			}
			out = append(out, masked{a.Value, a.ValueTwo})
		}
	}
	return out
}

// prefixCover returns the disjoint masked conditions matching every 32-bit value except those in
// forbidden: walking the bits from the top, each branch that holds no forbidden value becomes one
// condition. base is OR-ed into every mask (0xffffffff00000000 pins the high word to zero).
// The ioctl and personality lists in default.json are its output.
func prefixCover(forbidden []uint64, base uint64) []masked {
	var out []masked
	var walk func(vals []uint64, bit int, prefix uint64)
	walk = func(vals []uint64, bit int, prefix uint64) {
		if bit < 0 {
			return
		}
		mask := base | uint64(0xffffffff)&^(1<<bit-1)
		for b := range uint64(2) {
			var child []uint64
			for _, v := range vals {
				if v>>bit&1 == b {
					child = append(child, v)
				}
			}
			if len(child) == 0 {
				out = append(out, masked{mask, prefix | b<<bit})
			} else {
				walk(child, bit-1, prefix|b<<bit)
			}
		}
	}
	walk(forbidden, 31, 0)
	return out
}

func disjoint(a, b masked) bool { return (a.v^b.v)&a.m&b.m != 0 }

// checkCover asserts conds are pairwise disjoint and together match exactly `want` values of the
// low 32 bits (each condition fixes popcount(mask) bits).
func checkCover(t *testing.T, name string, conds []masked, want uint64) {
	t.Helper()
	var total uint64
	for i, c := range conds {
		total += 1 << (32 - bits.OnesCount32(uint32(c.m)))
		for _, d := range conds[i+1:] {
			if !disjoint(c, d) {
				t.Fatalf("%s: conditions %#x/%#x and %#x/%#x overlap", name, c.m, c.v, d.m, d.v)
			}
		}
	}
	if total != want {
		t.Fatalf("%s: conditions cover %d values, want %d", name, total, want)
	}
}

func TestDefaultSeccompIoctlCover(t *testing.T) {
	const tiocsti, tioclinux = 0x5412, 0x541c
	var allow, deny []masked
	for _, r := range rulesFor(DefaultSeccomp(), "ioctl") {
		c := maskedConds(t, r, 1)
		for _, x := range c {
			if x.m>>32 != 0 {
				t.Fatalf("ioctl mask %#x looks at the high word the kernel ignores", x.m)
			}
		}
		if r.Action == specs.ActAllow {
			allow = append(allow, c...)
		} else {
			deny = append(deny, c...)
		}
	}
	if !slices.Equal(deny, []masked{{0xffffffff, tiocsti}, {0xffffffff, tioclinux}}) {
		t.Fatalf("ioctl deny conditions %#v", deny)
	}
	checkCover(t, "ioctl", append(slices.Clone(allow), deny...), 1<<32)
	if want := prefixCover([]uint64{tiocsti, tioclinux}, 0); !slices.Equal(allow, want) {
		t.Errorf("ioctl allow list differs from prefixCover: %#v", want)
	}
	for _, c := range allow {
		for _, forbidden := range []uint64{tiocsti, tioclinux, tiocsti | 1<<32} {
			if forbidden&c.m == c.v {
				t.Fatalf("ioctl allow condition %#x/%#x matches %#x", c.m, c.v, forbidden)
			}
		}
	}
}

func TestDefaultSeccompPersonalityCover(t *testing.T) {
	var allowEq []uint64
	var deny []masked
	gt := false
	for _, r := range rulesFor(DefaultSeccomp(), "personality") {
		for _, a := range r.Args {
			switch {
			case r.Action == specs.ActAllow && a.Op == specs.OpEqualTo:
				allowEq = append(allowEq, a.Value)
			case r.Action == specs.ActErrno && a.Op == specs.OpGreaterThan && a.Value == 0xffffffff:
				gt = true
			case r.Action == specs.ActErrno && a.Op == specs.OpMaskedEqual:
				if a.Value>>32 != 0xffffffff || a.ValueTwo>>32 != 0 {
					t.Fatalf("personality deny %#x/%#x does not pin the high word to zero", a.Value, a.ValueTwo)
				}
				deny = append(deny, masked{a.Value, a.ValueTwo})
			default:
				t.Fatalf("unexpected personality condition %+v in %s rule", a, r.Action)
			}
		}
	}
	if !slices.Equal(allowEq, []uint64{0, 0xffffffff}) || !gt {
		t.Fatalf("personality allows %#x (want 0 and 0xffffffff), high-word deny %v", allowEq, gt)
	}
	checkCover(t, "personality", deny, 1<<32-2)
	if want := prefixCover([]uint64{0, 0xffffffff}, 0xffffffff00000000); !slices.Equal(deny, want) {
		t.Errorf("personality deny list differs from prefixCover: %#v", want)
	}
	for _, c := range deny {
		for _, ok := range []uint64{0, 0xffffffff} {
			if ok&c.m == c.v {
				t.Fatalf("personality deny %#x/%#x matches allowed %#x", c.m, c.v, ok)
			}
		}
	}
}

// TestDefaultSeccompNamespaceFlags checks every combination of namespace flags against the clone
// and unshare rules: exactly one rule matches, and it allows only when no namespace flag is set.
func TestDefaultSeccompNamespaceFlags(t *testing.T) {
	nsBits := []uint64{0x80, 0x20000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000}
	for _, sys := range []string{"clone", "unshare"} {
		var allow, deny []masked
		for _, r := range rulesFor(DefaultSeccomp(), sys) {
			if r.Action == specs.ActAllow {
				allow = append(allow, maskedConds(t, r, 0)...)
			} else if r.Action == specs.ActErrno && errnoOf(r) == 1 {
				deny = append(deny, maskedConds(t, r, 0)...)
			}
		}
		bitsHere := nsBits
		if sys == "clone" {
			bitsHere = nsBits[1:] // clone's 0x80 is part of the exit signal, not CLONE_NEWTIME
		}
		for combo := range 1 << len(bitsHere) {
			var flags uint64 = 0x11 | 0x100 // SIGCHLD and CLONE_VM never matter
			for i, b := range bitsHere {
				if combo&(1<<i) != 0 {
					flags |= b
				}
			}
			var na, nd int
			for _, c := range allow {
				if flags&c.m == c.v {
					na++
				}
			}
			for _, c := range deny {
				if flags&c.m == c.v {
					nd++
				}
			}
			if combo == 0 && (na != 1 || nd != 0) || combo != 0 && (na != 0 || nd != 1) {
				t.Fatalf("%s flags %#x: %d allow and %d deny conditions match", sys, flags, na, nd)
			}
		}
	}
}

func TestParseDockerFixture(t *testing.T) {
	data, err := os.ReadFile("seccomp/testdata/docker-like.json")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParseDockerSeccompWith(data, ParseOptions{GOARCH: "amd64", Kernel: "6.18.0"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}; !slices.Equal(p.Architectures, want) {
		t.Fatalf("architectures %v, want %v", p.Architectures, want)
	}
	if p.DefaultErrnoRet == nil || *p.DefaultErrnoRet != 1 {
		t.Fatalf("defaultErrnoRet %v", p.DefaultErrnoRet)
	}
	has := func(p *specs.LinuxSeccomp, name string) bool { return len(rulesFor(p, name)) > 0 }
	// Without capabilities: the CAP_SYS_ADMIN rule is gone, the "excludes CAP_SYS_ADMIN" ones stay.
	if has(p, "mount") || !has(p, "clone3") || len(rulesFor(p, "clone")) != 1 {
		t.Fatalf("capability resolution without caps wrong: %+v", p.Syscalls)
	}
	if !has(p, "modify_ldt") || has(p, "sync_file_range2") || !has(p, "ptrace") {
		t.Fatal("includes.arches / minKernel resolution wrong")
	}
	if c := rulesFor(p, "clone")[0]; len(c.Args) != 1 || c.Args[0].Value != 2114060288 || c.Args[0].Op != specs.OpMaskedEqual {
		t.Fatalf("clone args %+v", c.Args)
	}
	if r := rulesFor(p, "clone3")[0]; errnoOf(r) != 38 {
		t.Fatalf("clone3 errnoRet %d", errnoOf(r))
	}

	admin, err := ParseDockerSeccompWith(data, ParseOptions{Caps: []string{"CAP_SYS_ADMIN"}, GOARCH: "arm64", Kernel: "4.4"})
	if err != nil {
		t.Fatal(err)
	}
	if !has(admin, "mount") || has(admin, "clone3") && len(rulesFor(admin, "clone3")) != 1 || has(admin, "modify_ldt") || has(admin, "ptrace") {
		t.Fatalf("resolution with CAP_SYS_ADMIN on arm64/4.4 wrong: %+v", admin.Syscalls)
	}
	if want := []specs.Arch{specs.ArchAARCH64, specs.ArchARM}; !slices.Equal(admin.Architectures, want) {
		t.Fatalf("arm64 architectures %v", admin.Architectures)
	}
	if r := rulesFor(admin, "clone"); len(r) != 1 || len(r[0].Args) != 0 {
		t.Fatalf("with CAP_SYS_ADMIN clone should be allowed unconditionally only: %+v", r)
	}
}

func TestParseDockerMalformed(t *testing.T) {
	cases := []struct{ name, json, want string }{
		{"syntax", "{\n \"defaultAction\": \"SCMP_ACT_ALLOW\",\n ]", "line 3"},
		{"trailing", `{"defaultAction":"SCMP_ACT_ALLOW"} {}`, "trailing"},
		{"unknown field", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","exludes":{}}]}`, "exludes"},
		{"type", `{"defaultAction":"SCMP_ACT_ALLOW","defaultErrnoRet":"EPERM"}`, "line 1"},
		{"no default", `{"syscalls":[]}`, "unknown action"},
		{"bad action", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"ALLOW"}]}`, "syscalls[0].action"},
		{"bad op", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_IN"}]}]}`, "unknown op"},
		{"bad index", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}`, "index 6"},
		{"valueTwo", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"valueTwo":2,"op":"SCMP_CMP_EQ"}]}]}`, "valueTwo"},
		{"name and names", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"read","names":["write"],"action":"SCMP_ACT_ERRNO"}]}`, "both 'name' and 'names'"},
		{"no names", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"action":"SCMP_ACT_ERRNO"}]}`, "no syscall names"},
		{"bad name", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read write"],"action":"SCMP_ACT_ERRNO"}]}`, "bad syscall name"},
		{"errno on allow", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","errnoRet":1}]}`, "errnoRet"},
		{"errno too big", `{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":70000}`, "16 bits"},
		{"both arch forms", `{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],"archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":[]}]}`, "both 'architectures' and 'archMap'"},
		{"bad arch", `{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_Z80"]}`, "SCMP_ARCH_Z80"},
		{"bad flag", `{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_NOPE"]}`, "unknown flag"},
		{"bad minKernel", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","includes":{"minKernel":"new"}}]}`, "minKernel"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseDockerSeccompWith([]byte(c.json), ParseOptions{GOARCH: "amd64", Kernel: "6.18"})
			if !errors.Is(err, ErrBadProfile) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want ErrBadProfile mentioning %q", err, c.want)
			}
		})
	}
}

func TestParseDockerNameForm(t *testing.T) {
	p, err := ParseDockerSeccomp([]byte(`{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"syscalls":[{"name":"read","action":"SCMP_ACT_ALLOW"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Syscalls) != 1 || !slices.Equal(p.Syscalls[0].Names, []string{"read"}) || !slices.Equal(p.Architectures, []specs.Arch{specs.ArchX86_64}) {
		t.Fatalf("got %+v", p)
	}
}

func TestSeccompDigest(t *testing.T) {
	a, err := SeccompDigest(DefaultSeccomp())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := SeccompDigest(DefaultSeccomp())
	p := DefaultSeccomp()
	p.Syscalls = p.Syscalls[1:]
	c, _ := SeccompDigest(p)
	if a != b || a == c || !strings.HasPrefix(a, "sha256:") || len(a) != 71 {
		t.Fatalf("digests %s %s %s", a, b, c)
	}
}

// TestSeccompDigestCoversSpec fails when runtime-spec grows a field SeccompDigest does not hash:
// the compiled-program cache would then hand out a program for a different profile.
func TestSeccompDigestCoversSpec(t *testing.T) {
	want := map[reflect.Type][]string{
		reflect.TypeOf(specs.LinuxSeccomp{}):    {"DefaultAction", "DefaultErrnoRet", "Architectures", "Flags", "ListenerPath", "ListenerMetadata", "Syscalls"},
		reflect.TypeOf(specs.LinuxSyscall{}):    {"Names", "Action", "ErrnoRet", "Args"},
		reflect.TypeOf(specs.LinuxSeccompArg{}): {"Index", "Value", "ValueTwo", "Op"},
	}
	for typ, fields := range want {
		var got []string
		for f := range typ.Fields() {
			got = append(got, f.Name)
		}
		if !slices.Equal(got, fields) {
			t.Errorf("%s has fields %v; SeccompDigest (and cloneSeccomp) cover %v", typ, got, fields)
		}
	}
	// Every field changes the digest.
	base := DefaultSeccomp()
	d0, _ := SeccompDigest(base)
	one := uint(1)
	muts := []func(p *specs.LinuxSeccomp){
		func(p *specs.LinuxSeccomp) { p.DefaultAction = specs.ActKill },
		func(p *specs.LinuxSeccomp) { p.DefaultErrnoRet = &one },
		func(p *specs.LinuxSeccomp) { p.DefaultErrnoRet = nil },
		func(p *specs.LinuxSeccomp) { p.Architectures = append(p.Architectures, specs.ArchX86) },
		func(p *specs.LinuxSeccomp) { p.Flags = []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog} },
		func(p *specs.LinuxSeccomp) { p.ListenerPath = "x" },
		func(p *specs.LinuxSeccomp) { p.ListenerMetadata = "x" },
		func(p *specs.LinuxSeccomp) { p.Syscalls[0].Names[0] += "x" },
		func(p *specs.LinuxSeccomp) { p.Syscalls[0].Action = specs.ActLog },
		func(p *specs.LinuxSeccomp) { p.Syscalls[0].ErrnoRet = &one },
		func(p *specs.LinuxSeccomp) { p.Syscalls[5].Args[0].Value++ },
		func(p *specs.LinuxSeccomp) { p.Syscalls[5].Args[0].ValueTwo++ },
		func(p *specs.LinuxSeccomp) { p.Syscalls[5].Args[0].Index++ },
		func(p *specs.LinuxSeccomp) { p.Syscalls[5].Args[0].Op = specs.OpEqualTo },
		// moving a name between adjacent rules must not collide
		func(p *specs.LinuxSeccomp) {
			p.Syscalls[1].Names = append([]string{p.Syscalls[0].Names[len(p.Syscalls[0].Names)-1]}, p.Syscalls[1].Names...)
			p.Syscalls[0].Names = p.Syscalls[0].Names[:len(p.Syscalls[0].Names)-1]
		},
	}
	seen := map[string]int{d0: -1}
	for i, m := range muts {
		p := DefaultSeccomp()
		m(p)
		d, _ := SeccompDigest(p)
		if j, dup := seen[d]; dup {
			t.Errorf("mutation %d gives the same digest as %d", i, j)
		}
		seen[d] = i
	}
}

func TestKernelAtLeast(t *testing.T) {
	for _, c := range []struct {
		rel, min string
		want     bool
	}{{"6.18.0", "4.8", true}, {"4.8", "4.8", true}, {"4.7.10", "4.8", false}, {"6.1.0-18-amd64", "6.1", true}, {"5.19-rc1", "6.0", false}} {
		got, err := kernelAtLeast(c.rel, c.min)
		if err != nil || got != c.want {
			t.Errorf("kernelAtLeast(%q, %q) = %v, %v", c.rel, c.min, got, err)
		}
	}
}

// TestDefaultSeccompNotes: the notes are every rule of the profile as shipped, comments included,
// from the same parse as DefaultSeccomp.
func TestDefaultSeccompNotes(t *testing.T) {
	var shipped struct {
		Syscalls []struct {
			Names    []string                 `json:"names"`
			Action   specs.LinuxSeccompAction `json:"action"`
			ErrnoRet *uint                    `json:"errnoRet"`
			Comment  string                   `json:"comment"`
		} `json:"syscalls"`
	}
	if err := json.Unmarshal(DefaultSeccompJSON(), &shipped); err != nil {
		t.Fatal(err)
	}
	notes := DefaultSeccompNotes()
	if len(notes) != len(shipped.Syscalls) {
		t.Fatalf("%d notes, want %d", len(notes), len(shipped.Syscalls))
	}
	comments := 0
	for i, r := range shipped.Syscalls {
		n := notes[i]
		if !slices.Equal(n.Names, r.Names) || n.Action != r.Action || n.Comment != r.Comment ||
			(n.ErrnoRet == nil) != (r.ErrnoRet == nil) || n.ErrnoRet != nil && *n.ErrnoRet != *r.ErrnoRet {
			t.Errorf("note %d = %+v, want %+v", i, n, r)
		}
		if r.Comment != "" {
			comments++
		}
	}
	if comments == 0 {
		t.Error("no rule's comment kept")
	}
}

// DefaultSeccompShape describes the profile DefaultSeccomp returns, and DefaultSeccompSum is the
// embedded file's.
func TestDefaultSeccompShapeDescribesIt(t *testing.T) {
	action, rules := DefaultSeccompShape()
	p := DefaultSeccomp()
	if action != p.DefaultAction || rules != len(p.Syscalls) {
		t.Errorf("shape %s, %d rules; the profile has %s, %d", action, rules, p.DefaultAction, len(p.Syscalls))
	}
	if want := sha256.Sum256(DefaultSeccompJSON()); DefaultSeccompSum() != hex.EncodeToString(want[:]) {
		t.Errorf("embedded profile sum %s, want %x", DefaultSeccompSum(), want)
	}
}
