package supervisor

import (
	"net"
	"os"
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
