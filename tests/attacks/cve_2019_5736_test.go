package attacks

import (
	"context"
	"crypto/sha256"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/sandbox"
	"bulwark.dev/bulwark/tests/internal/report"
	"bulwark.dev/bulwark/tests/internal/testenv"
)

// TestCVE_2019_5736 replays runc's /proc/self/exe overwrite. The container's /bin/evil is
// "#!/proc/self/exe": when the runtime's exec helper, already inside the container, executes it,
// the kernel re-runs whatever /proc/self/exe is at that moment — the host runtime binary, unless
// the runtime guards it. Meanwhile the container's init watches for every process that enters
// and opens its /proc/PID/exe for writing, directly and through an O_PATH descriptor kept after
// the process exits. No open for writing may succeed, and the runtime binary (here the test
// binary, which the sandbox re-executes as its init and exec helper) must be unchanged.
func TestCVE_2019_5736(t *testing.T) {
	t.Run("go-api", testExeOverwriteAPI)
	t.Run("bulwark-runc", testExeOverwriteCLI)
}

// evilExecs are the processes the host starts in the container while the watcher runs.
var evilExecs = [][]string{{"/bin/evil"}, {"/proc/self/exe"}, {"/bin/evil"}, {"/bin/sleep", "0.3"}}

func plantEvil(t *testing.T) func(rootfs string) {
	return func(rootfs string) {
		if err := os.WriteFile(filepath.Join(rootfs, "bin", "evil"), []byte("#!/proc/self/exe\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func testExeOverwriteAPI(t *testing.T) {
	runtimeBin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	before := sha(t, runtimeBin)

	e := testenv.NewEnv(t, "tenant-attacks")
	e.Prepare = plantEvil(t)
	c := e.MustCreate(nil, testenv.Spec(testenv.ProbeArgs("exe-watch", "2.5")))
	if err := c.Start(); err != nil {
		t.Fatalf("start: %v%s", err, c.ErrText())
	}
	time.Sleep(200 * time.Millisecond)
	for _, args := range evilExecs {
		out := e.OutFile("exec-out")
		p, err := c.Exec(&specs.Process{Args: args, Cwd: "/", Env: []string{"PATH=/bin"}}, sandbox.IO{Stdout: out, Stderr: out})
		out.Close()
		if err != nil {
			t.Logf("exec %v refused: %v", args, err)
			continue
		}
		code, err := p.Wait()
		b, _ := os.ReadFile(out.Name())
		t.Logf("exec %v: exit %d %v %.200s", args, code, err, b)
	}
	if code := c.WaitExit(); code != 0 {
		t.Fatalf("watcher exited %d%s", code, c.ErrText())
	}
	assertNoExeWrite(t, c.Report().ExeWatch)
	if after := sha(t, runtimeBin); after != before {
		t.Fatalf("ESCAPE: runtime binary %s changed", runtimeBin)
	}
}

func assertNoExeWrite(t *testing.T, w *report.ExeWatch) {
	t.Helper()
	if w.WriteOpened != 0 {
		t.Errorf("ESCAPE: %d opens of a runtime process's exe for writing succeeded: %+v", w.WriteOpened, w.Seen)
	}
	refused := 0
	for _, s := range w.Seen {
		t.Logf("saw pid %d exe %q: direct %s, O_PATH %s, reopen %v", s.Pid, s.Exe, s.Direct, s.OPath, s.Reopen)
		switch s.Direct {
		case "EACCES":
			// The kernel's ptrace-mode access check on /proc/PID/exe: the process entering the
			// container is not dumpable, and the host binary is not the container root's.
			refused++
		case "ENOENT", "ESRCH":
			// The process was gone before the open: nothing to learn from it.
		default:
			t.Errorf("/proc/%d/exe (%s) open for writing: %q, want EACCES", s.Pid, s.Exe, s.Direct)
		}
		if _, ok := s.Reopen[""]; ok {
			t.Errorf("/proc/%d/exe (%s) reopened for writing through O_PATH", s.Pid, s.Exe)
		}
	}
	if len(w.Seen) > 0 && refused == 0 {
		t.Errorf("no open of a live process's exe was attempted and refused with EACCES")
	}
	if len(w.Seen) == 0 {
		t.Errorf("the watcher saw no exec'd process: the race was not exercised")
	}
}

// testExeOverwriteCLI is the same attack with bulwark-runc as the runtime, as containerd or
// Docker would drive it: bin/bulwark-runc is the binary that must stay intact.
func testExeOverwriteCLI(t *testing.T) {
	testenv.RequireRoot(t)
	bin := testenv.RuntimeBin(t)
	before := sha(t, bin)
	root := t.TempDir()
	leaks := testenv.NewLeaks(t, root)
	bundle := testenv.Bundle(t, testenv.Spec(testenv.ProbeArgs("exe-watch", "2.5")))
	leaks.Dir(bundle)
	plantEvil(t)(filepath.Join(bundle, "rootfs"))
	id := leaks.Track(testenv.UniqueID(t))
	runc := func(args ...string) *exec.Cmd {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang fails this test only
		t.Cleanup(cancel)
		return exec.CommandContext(ctx, bin, append([]string{"--root", root, "--state-root", root}, args...)...)
	}
	out, err := os.Create(filepath.Join(bundle, "watch.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	create := runc("create", "--bundle", bundle, id)
	// The init inherits create's stdio: a pipe would keep Run waiting until the container exits.
	create.Stdout, create.Stderr = out, out
	if err := create.Run(); err != nil {
		b, _ := os.ReadFile(out.Name())
		t.Fatalf("create: %v\n%s", err, b)
	}
	t.Cleanup(func() { runc("delete", "--force", id).Run() })
	if b, err := runc("start", id).CombinedOutput(); err != nil {
		t.Fatalf("start: %v\n%s", err, b)
	}
	time.Sleep(200 * time.Millisecond)
	for _, args := range evilExecs {
		b, err := runc(append([]string{"exec", id}, args...)...).CombinedOutput()
		t.Logf("exec %v: %v %.200s", args, err, b)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := runc("state", id).Output()
		if err != nil || strings.Contains(string(b), `"stopped"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("watcher did not finish: %s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	assertNoExeWrite(t, testenv.ParseReport(t, b).ExeWatch)
	if after := sha(t, bin); after != before {
		t.Fatalf("ESCAPE: runtime binary %s changed", bin)
	}
}

func sha(t *testing.T, p string) [32]byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}
