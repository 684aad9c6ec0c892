package compiler

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/profiles"
	"bulwark.dev/bulwark/sandbox/internal/seccomp"
)

func compileDefault(t testing.TB) *seccomp.Program {
	t.Helper()
	p, err := Compile(profiles.DefaultSeccomp())
	if err != nil {
		t.Fatalf("compile default profile: %v", err)
	}
	return p
}

func probeResults(t *testing.T, progs ...*seccomp.Program) map[string]int {
	t.Helper()
	out, err := runHelper(t, "probe", progs, nil)
	if err != nil {
		t.Fatal(err)
	}
	var res map[string]int
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("helper output %q: %v", out, err)
	}
	return res
}

// TestDefaultProfileEnforced loads the compiled default program in a fresh process and checks the
// kernel's answer to each probe; an unfiltered run shows each refusal really came from the filter.
func TestDefaultProfileEnforced(t *testing.T) {
	if len(probes) == 0 {
		t.Skip("syscall probes are written for amd64")
	}
	got := probeResults(t, compileDefault(t))
	for _, pr := range probes {
		if e := unix.Errno(got[pr.name]); e != pr.want {
			t.Errorf("%s: got %d (%v), want %d (%v)", pr.name, e, e, pr.want, pr.want)
		}
	}
	if got["threads"] != 0 {
		t.Errorf("new OS threads under the filter failed: %v (glibc needs ENOSYS from clone3)", unix.Errno(got["threads"]))
	}

	// As root every refused call would have reached the kernel; unprivileged, the kernel itself
	// answers EPERM to several (mount, setns), so the comparison only means something as root.
	if os.Geteuid() != 0 {
		t.Log("unfiltered baseline skipped: not root")
		return
	}
	base := probeResults(t)
	for _, pr := range probes {
		if hostEffect[pr.name] || pr.want != unix.EPERM && pr.want != unix.ENOSYS || pr.name == "syscall 1000" {
			continue
		}
		if e := unix.Errno(base[pr.name]); e == pr.want {
			t.Errorf("%s: %v without any filter too; the probe proves nothing", pr.name, e)
		}
	}
}

// TestStackedProfileCannotLowerFloor loads the floor and then a permissive profile: the kernel
// runs both and the strictest answer wins, so the second one can only take more away.
func TestStackedProfileCannotLowerFloor(t *testing.T) {
	if len(probes) == 0 {
		t.Skip("syscall probes are written for amd64")
	}
	eacces := uint(unix.EACCES)
	loose, err := Compile(&specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: &eacces}},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := probeResults(t, compileDefault(t), loose)
	want := map[string]unix.Errno{"getppid": unix.EACCES, "open_by_handle_at": unix.EPERM, "clone3": unix.ENOSYS,
		"socket(INET, STREAM, MPTCP)": unix.EPERM, "syscall 1000": unix.ENOSYS, "socket(INET, STREAM|CLOEXEC, 0)": 0}
	for name, w := range want {
		if e := unix.Errno(got[name]); e != w {
			t.Errorf("%s: got %v, want %v", name, e, w)
		}
	}
}

func TestBusyboxUnderDefault(t *testing.T) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox-static not installed")
	}
	prog := compileDefault(t)
	script := `true && echo hi | cat >/dev/null && ls / >/dev/null && id -u >/dev/null && date >/dev/null && x=$(echo sub) && test "$x" = sub`
	if out, err := runHelper(t, "exec", []*seccomp.Program{prog}, nil, bb, "sh", "-c", script); err != nil {
		t.Fatalf("busybox sh under the default profile: %v (%s)", err, out)
	}
	// And the filter really is in force in the exec'd program.
	out, err := runHelper(t, "exec", []*seccomp.Program{prog}, nil, bb, "sh", "-c", "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status")
	if err != nil || !strings.Contains(out, "Seccomp:\t2") || !strings.Contains(out, "NoNewPrivs:\t1") {
		t.Fatalf("status after exec: %q, %v", out, err)
	}
}

const staticGoProgram = `package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
)

func main() {
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); runtime.LockOSThread(); _ = make([]byte, 1<<20*(i+1)) }()
	}
	wg.Wait()
	runtime.GC()
	// Go >= 1.24 tries MPTCP first; the floor refuses it and net must fall back to TCP.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil { fmt.Println("listen:", err); os.Exit(1) }
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil { fmt.Println("dial:", err); os.Exit(1) }
	c.Close(); ln.Close()
	f := filepath.Join(os.Args[1], "file")
	if err := os.WriteFile(f, []byte("x"), 0o600); err != nil { fmt.Println(err); os.Exit(1) }
	if b, err := os.ReadFile(f); err != nil || string(b) != "x" { fmt.Println("read:", err); os.Exit(1) }
	if out, err := exec.Command(os.Args[2], "echo", "child").Output(); err != nil || string(out) != "child\n" {
		fmt.Println("exec:", err); os.Exit(1)
	}
	fmt.Println("ok")
}
`

func TestStaticGoUnderDefault(t *testing.T) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox-static not installed")
	}
	// go test puts its own toolchain first on PATH.
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go toolchain not available to build the probe program")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte(staticGoProgram), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "prog")
	build := exec.Command(goBin, "build", "-o", bin, src)
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, err := runHelper(t, "exec", []*seccomp.Program{compileDefault(t)}, nil, bin, dir, bb)
	if err != nil || out != "ok\n" {
		t.Fatalf("cgo-free Go program under the default profile: %q, %v", out, err)
	}
}

// elfExit builds a minimal static x86-64 ELF whose code is the given bytes followed by a native
// exit(7), for running foreign-ABI system calls without a toolchain.
func elfExit(code []byte) []byte {
	code = append(code, 0xbf, 7, 0, 0, 0, 0xb8, 60, 0, 0, 0, 0x0f, 0x05) // mov edi,7; mov eax,60; syscall
	const base, hdr = 0x400000, 64 + 56
	le := func(b []byte, v uint64, n int) []byte {
		for i := range n {
			b = append(b, byte(v>>(8*i)))
		}
		return b
	}
	b := []byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	b = le(b, 2, 2)        // ET_EXEC
	b = le(b, 0x3e, 2)     // EM_X86_64
	b = le(b, 1, 4)        // EV_CURRENT
	b = le(b, base+hdr, 8) // entry
	b = le(b, 64, 8)       // phoff
	b = le(b, 0, 8)        // shoff
	b = le(b, 0, 4)        // flags
	b = le(b, 64, 2)       // ehsize
	b = le(b, 56, 2)       // phentsize
	b = le(b, 1, 2)        // phnum
	b = le(b, 0, 6)        // shentsize, shnum, shstrndx
	b = le(b, 1, 4)        // PT_LOAD
	b = le(b, 5, 4)        // R+X
	b = le(b, 0, 8)        // offset
	b = le(b, base, 8)     // vaddr
	b = le(b, base, 8)     // paddr
	n := uint64(hdr + len(code))
	b = le(b, n, 8) // filesz
	b = le(b, n, 8) // memsz
	b = le(b, 0x1000, 8)
	return append(b, code...)
}

// TestForeignABIsKilled runs i386 (int 0x80) and x32 system calls under the floor: the filter only
// knows the native ABI, so both kill the process with SIGSYS instead of reaching a second syscall
// table the allowlist never described.
func TestForeignABIsKilled(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("i386 and x32 are x86-64's foreign ABIs")
	}
	dir := t.TempDir()
	cases := []struct {
		name string
		code []byte
		// exit status without a filter when the kernel supports the ABI
		native int
	}{
		{"i386 int 0x80 exit(42)", []byte{0xb8, 1, 0, 0, 0, 0xbb, 42, 0, 0, 0, 0xcd, 0x80}, 42},
		{"x32 exit(43)", []byte{0xb8, 60, 0, 0, 0x40, 0xbf, 43, 0, 0, 0, 0x0f, 0x05}, 43},
	}
	prog := compileDefault(t)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bin := filepath.Join(dir, "abi"+string(rune('0'+i)))
			if err := os.WriteFile(bin, elfExit(c.code), 0o700); err != nil {
				t.Fatal(err)
			}
			// Without a filter: the ABI works (42/43), or the kernel lacks it (7 from the fallback
			// exit, or SIGSEGV for int 0x80 without IA32 emulation).
			err := exec.Command(bin).Run()
			var ee *exec.ExitError
			switch {
			case err == nil:
				t.Fatal("probe exited 0; the ELF is wrong")
			case errors.As(err, &ee) && ee.ExitCode() == c.native:
			case errors.As(err, &ee):
				t.Logf("kernel lacks this ABI (%v); checking the filter still kills", err)
			default:
				t.Fatal(err)
			}
			_, err = runHelper(t, "exec", []*seccomp.Program{prog}, nil, bin)
			if !errors.As(err, &ee) {
				t.Fatalf("under the filter: %v, want death by SIGSYS", err)
			}
			ws := ee.Sys().(syscall.WaitStatus)
			if !ws.Signaled() || ws.Signal() != syscall.SIGSYS {
				t.Fatalf("under the filter: %v, want death by SIGSYS", err)
			}
		})
	}
}
