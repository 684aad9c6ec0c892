package supervisor

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/procstat"
)

// TestReaperRecordsOrphans: a process the worker leaves behind becomes the reaper's child; its
// exit status is recorded under its pid and start time, and the reaper returns once the worker
// exits 0 with no child left (it started the worker again while one was).
func TestReaperRecordsOrphans(t *testing.T) {
	dir := t.TempDir()
	pidFile, gate := filepath.Join(dir, "pid"), filepath.Join(dir, "gate")
	// The first worker leaves a child that exits 7 once the test has read its start time.
	script := `[ -e ` + pidFile + ` ] && exit 0
sh -c 'while [ ! -e ` + gate + ` ]; do sleep 0.01; done; exit 7' &
echo $! > ` + pidFile + `.tmp && mv ` + pidFile + `.tmp ` + pidFile
	done := make(chan error, 1)
	go func() { done <- RunReaper(dir, []string{"/bin/sh", "-c", script}) }()
	var pid int
	for pid == 0 {
		b, _ := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		time.Sleep(10 * time.Millisecond)
	}
	start := procstat.StartTime(pid)
	if start == 0 || !procstat.Alive(pid, start) {
		t.Fatalf("orphan %d not alive", pid)
	}
	if unlock, ok, _ := TryLock(filepath.Join(dir, "reaper.lock")); ok {
		unlock()
		t.Fatal("the reaper does not hold its lock")
	}
	os.WriteFile(gate, nil, 0o600)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	status, ok := TakeExit(dir, pid, start)
	if !ok || status != 7 {
		t.Fatalf("recorded exit of %d: %d %v, want 7", pid, status, ok)
	}
	if _, ok := TakeExit(dir, pid, start); ok {
		t.Error("a record was taken twice")
	}
}

// TestMessagesCarryFiles: Send and Recv frame a message and pass descriptors.
func TestMessagesCarryFiles(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "sock")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		return c.(*net.UnixConn)
	}
	a, b := conn(fds[0]), conn(fds[1])
	defer a.Close()
	defer b.Close()
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, []byte("content"), 0o600)
	f, _ := os.Open(file)
	defer f.Close()
	type msg struct{ Op, Body string }
	go Send(a, msg{Op: "run", Body: strings.Repeat("x", 1<<20)}, f)
	var got msg
	files, err := Recv(b, &got)
	if err != nil {
		t.Fatal(err)
	}
	if got.Op != "run" || len(got.Body) != 1<<20 || len(files) != 1 {
		t.Fatalf("got op %q, body %d bytes, %d files", got.Op, len(got.Body), len(files))
	}
	buf := make([]byte, 7)
	if _, err := files[0].ReadAt(buf, 0); err != nil || string(buf) != "content" {
		t.Errorf("received file reads %q, %v", buf, err)
	}
	files[0].Close()
}

// TestDialStartsOneReaper: a reaper that exits without listening (here at once) is started
// once; Dial then fails at once, rather than start it again and again until its timeout.
func TestDialStartsOneReaper(t *testing.T) {
	dir, count := t.TempDir(), filepath.Join(t.TempDir(), "count")
	start := time.Now()
	_, err := Dial(dir, []string{"/bin/sh", "-c", "echo >> " + count})
	if err == nil || !strings.Contains(err.Error(), "exited without listening") {
		t.Errorf("Dial: %v, want that the supervisor exited without listening", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Dial took %v", d)
	}
	if b, _ := os.ReadFile(count); strings.Count(string(b), "\n") != 1 {
		t.Errorf("the reaper was started %d times, want once", strings.Count(string(b), "\n"))
	}
}

// TestReaperOutlastsRunningProbe: Running (engine.ensureSupervised's look, from any command
// that reads a container) holds the reaper lock for an instant; a reaper Dial started in that
// instant took the probe for another reaper and returned without running its worker, and Dial
// failed the run at once ("exited without listening"; before b1d88ba, after waiting 60 s). The
// reaper now takes the lock once such a probe has let it go.
func TestReaperOutlastsRunningProbe(t *testing.T) {
	dir, ran := t.TempDir(), filepath.Join(t.TempDir(), "ran")
	unlock, ok, err := TryLock(filepath.Join(dir, "reaper.lock"))
	if err != nil || !ok {
		t.Fatal("lock", err)
	}
	time.AfterFunc(20*time.Millisecond, unlock) // the probe lets go
	if err := RunReaper(dir, []string{"/bin/sh", "-c", "echo > " + ran}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ran); err != nil {
		t.Error("the reaper returned without running its worker: it took a probe for another reaper")
	}
}

func TestPruneExits(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "exits"), 0o700)
	for _, n := range []string{"10-5", "11-6", "junk"} {
		os.WriteFile(filepath.Join(dir, "exits", n), []byte("0"), 0o600)
	}
	PruneExits(dir, func(pid int, start uint64) bool { return pid == 10 && start == 5 })
	ents, _ := os.ReadDir(filepath.Join(dir, "exits"))
	if len(ents) != 1 || ents[0].Name() != "10-5" {
		t.Errorf("left %v", ents)
	}
}

// TestMain runs the test binary as the store test's worker when the reaper starts it, and as
// the dial test's reaper when Dial starts one.
func TestMain(m *testing.M) {
	if os.Getenv(EnvMode) == ModeWorker && os.Getenv("SUPERVISOR_TEST_STORE") != "" {
		os.Exit(storeWorker(os.Getenv("SUPERVISOR_TEST_STORE")))
	}
	if os.Getenv(EnvMode) == ModeReaper && os.Getenv("SUPERVISOR_TEST_DIAL") != "" {
		os.Exit(dialReaper(os.Getenv(EnvDir)))
	}
	os.Exit(m.Run())
}

// dialReaper is the dial test's reaper: it takes the reaper lock, listens, answers one client
// and exits.
func dialReaper(dir string) int {
	unlock, ok, err := TryLock(filepath.Join(dir, "reaper.lock"))
	if err != nil || !ok {
		return 2
	}
	defer unlock()
	ln, err := Listen(dir)
	if err != nil {
		return 2
	}
	defer ln.Close()
	c, err := ln.AcceptUnix()
	if err != nil {
		return 2
	}
	c.Write([]byte("hello"))
	c.Close()
	return 0
}

// TestDialOutlastsLeavingSupervisor: a client that finds the supervisor leaving (its reaper
// still holds the lock, nothing listens any more) starts another once that one has gone. It
// waited for one to listen until its timeout (60 s), and then failed the run.
func TestDialOutlastsLeavingSupervisor(t *testing.T) {
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SUPERVISOR_TEST_DIAL", "1")
	// The leaving supervisor: a reaper's lock held, and the socket its worker closed.
	unlock, ok, err := TryLock(filepath.Join(dir, "reaper.lock"))
	if err != nil || !ok {
		t.Fatal("lock", err)
	}
	ln, err := Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	type result struct {
		c   *net.UnixConn
		err error
	}
	dialed := make(chan result, 1)
	go func() {
		c, err := Dial(dir, []string{exe})
		dialed <- result{c, err}
	}()
	time.Sleep(100 * time.Millisecond)
	select {
	case r := <-dialed:
		t.Fatalf("Dial returned while no supervisor listened: %v", r.err)
	default:
	}
	unlock() // the old reaper has left
	select {
	case r := <-dialed:
		if r.err != nil {
			t.Fatal(r.err)
		}
		b := make([]byte, 5)
		if _, err := io.ReadFull(r.c, b); err != nil || string(b) != "hello" {
			t.Errorf("the new supervisor said %q (%v)", b, err)
		}
		r.c.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("Dial still waits 10 s after the leaving supervisor has gone")
	}
}

// storeWorker is the store test's worker: the first one stores an open file and dies; the next
// one finds it, writes what it reads to out and exits idle.
func storeWorker(out string) int {
	s, kept, err := OpenStore()
	if err != nil {
		return 2
	}
	if f, ok := kept["kept"]; ok {
		b := make([]byte, 16)
		n, _ := f.ReadAt(b, 0)
		s.Drop("kept")
		if err := os.WriteFile(out, b[:n], 0o600); err != nil {
			return 2
		}
		return 0
	}
	f, err := os.Open(out + ".src")
	if err != nil {
		return 2
	}
	if err := s.Put("kept", f); err != nil {
		return 2
	}
	os.Remove(out + ".src") // only the stored descriptor names it now
	return 1
}

// TestStoreOutlivesWorker: a descriptor the worker stored is handed to the next worker after the
// first one died.
func TestStoreOutlivesWorker(t *testing.T) {
	dir, out := t.TempDir(), filepath.Join(t.TempDir(), "out")
	os.WriteFile(out+".src", []byte("stored"), 0o600)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SUPERVISOR_TEST_STORE", out)
	if err := RunReaper(dir, []string{exe}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != "stored" {
		t.Errorf("the second worker read %q (%v), want the stored file's content", b, err)
	}
}

// TestExitStatusOfAnotherParentsChild: the exit status of a process this one did not start
// reads from the pidfd opened while it ran, after its parent collected it, and from its zombie
// before.
func TestExitStatusOfAnotherParentsChild(t *testing.T) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	for _, reap := range []bool{false, true} {
		gate := filepath.Join(t.TempDir(), "gate")
		out, err := exec.Command("/bin/sh", "-c", `(while [ ! -e `+gate+` ]; do sleep 0.01; done; exit 5) >/dev/null 2>&1 & echo $!`).Output()
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(out)))
		start := procstat.StartTime(pid)
		pfd, err := unix.PidfdOpen(pid, 0)
		if err != nil || start == 0 {
			t.Fatalf("pidfd of %d: %v", pid, err)
		}
		if _, ok := ExitStatus(pfd, pid, start); ok {
			t.Error("a running process has an exit status")
		}
		os.WriteFile(gate, nil, 0o600)
		unix.Poll([]unix.PollFd{{Fd: int32(pfd), Events: unix.POLLIN}}, -1)
		if reap {
			var ws unix.WaitStatus
			if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil {
				t.Fatal(err)
			}
			if _, ok := pidfdExit(pfd); !ok {
				unix.Close(pfd)
				t.Skip("this kernel keeps no exit status in pidfds (PIDFD_INFO_EXIT, Linux 6.15)")
			}
		}
		if st, ok := ExitStatus(pfd, pid, start); !ok || st != 5 {
			t.Errorf("reaped %v: exit status %d %v, want 5", reap, st, ok)
		}
		if !reap {
			unix.Wait4(pid, nil, 0, nil)
		}
		unix.Close(pfd)
	}
}

// TestReaperLeavesRemovedDir: once its directory is removed, the reaper starts no worker again
// (one would make the state root anew) even though a child of its is left, and returns.
func TestReaperLeavesRemovedDir(t *testing.T) {
	base, aside := t.TempDir(), t.TempDir()
	dir := filepath.Join(base, "supervisor")
	os.Mkdir(dir, 0o700)
	count, gate, pidFile := filepath.Join(aside, "count"), filepath.Join(aside, "gate"), filepath.Join(aside, "pid")
	// The count is written once the worker has made its directory, so the test's removal
	// comes after it.
	script := `mkdir -p ` + dir + `/engine || exit 1; echo >> ` + count + `
while [ ! -e ` + gate + ` ]; do sleep 0.01; done
sleep 60 & echo $! > ` + pidFile + `; exit 0`
	done := make(chan error, 1)
	go func() { done <- RunReaper(dir, []string{"/bin/sh", "-c", script}) }()
	for {
		if b, _ := os.ReadFile(count); len(b) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(gate, nil, 0o600)
	t.Cleanup(func() {
		b, _ := os.ReadFile(pidFile)
		if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid > 0 {
			unix.Kill(pid, unix.SIGKILL)
			unix.Wait4(pid, nil, 0, nil)
		}
	})
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(30 * time.Second):
		t.Error("the reaper still runs 30 s after its directory was removed")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the removed directory is back: %v", err)
	}
	if b, _ := os.ReadFile(count); strings.Count(string(b), "\n") != 1 {
		t.Errorf("worker started %d times, want once", strings.Count(string(b), "\n"))
	}
}

// TestEnsureStartsPastLeavingWorker: Ensure starts a supervisor when the one found is leaving —
// a worker still listening whose reaper died, or a reaper holding the lock whose worker's socket
// is gone (idle) — and not when one runs and listens. engine.ensureSupervised looked with
// Running and then Dialled: it connected to the first and took the second for running, starting
// none, and the containers stayed unsupervised until a later command.
func TestEnsureStartsPastLeavingWorker(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SUPERVISOR_TEST_DIAL", "1")
	ensured := func(dir string) <-chan error {
		done := make(chan error, 1)
		go func() { done <- Ensure(dir, []string{exe}) }()
		return done
	}
	started := func(dir string, leaving uint64, done <-chan error) {
		t.Helper()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Ensure still waits after 10 s")
		}
		if ino := socketIno(dir); ino == 0 || ino == leaving {
			t.Error("Ensure returned with no new supervisor listening")
		}
	}

	// A worker whose reaper died: it still listens, no reaper holds the lock.
	dir := t.TempDir()
	ln, err := Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	started(dir, socketIno(dir), ensured(dir))

	// A supervisor leaving idle: its reaper holds the lock, its worker's socket is gone.
	dir = t.TempDir()
	unlock, ok, err := TryLock(filepath.Join(dir, "reaper.lock"))
	if err != nil || !ok {
		t.Fatal("lock", err)
	}
	done := ensured(dir)
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Ensure returned while the supervisor found was leaving: %v", err)
	default:
	}
	unlock()
	started(dir, 0, done)

	// One runs and listens: nothing is started (no command to start one with).
	dir = t.TempDir()
	unlock, ok, err = TryLock(filepath.Join(dir, "reaper.lock"))
	if err != nil || !ok {
		t.Fatal("lock", err)
	}
	defer unlock()
	ln2, err := Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	if err := Ensure(dir, nil); err != nil {
		t.Errorf("with a supervisor running: %v", err)
	}
}
