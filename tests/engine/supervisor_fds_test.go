package engine

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bulwark.dev/bulwark/tests/internal/clitest"
)

// TestSupervisorDropsClientFiles: the supervisor a `run -d` starts outlives its client, so it
// must not keep the client's open files. The client here inherits the write end of a pipe (as
// a shell's redirections or flock(1)'s lock are inherited); once the client has exited, the
// read end sees EOF — nothing else holds the write end. On the old code the reaper, its worker
// and so on held it until the supervisor went idle (a leaked lock blocked a whole test run).
func TestSupervisorDropsClientFiles(t *testing.T) {
	f := newFixture(t)
	id := f.name(t, "fds")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(clitest.Bin, "--root", f.root, "run", "-d", "--name", id, "busybox:1", "sleep", "30")
	cmd.ExtraFiles = []*os.File{w} // fd 3 in the client, not close-on-exec
	out, err := cmd.CombinedOutput()
	w.Close()
	if err != nil {
		t.Fatalf("run -d: %v\n%s", err, out)
	}
	defer clitest.Run(t, f.root, "rm", "-f", id)
	if len(supervisorProcs(t, f.root)["reaper"]) == 0 {
		t.Fatal("no supervisor running after run -d")
	}
	eof := make(chan error, 1)
	go func() {
		var b [1]byte
		_, err := r.Read(b[:])
		eof <- err
	}()
	select {
	case <-eof:
	case <-time.After(10 * time.Second):
		t.Fatalf("the client's pipe is still held after it exited:\n%s", holders(t, r))
	}
}

// holders lists the processes holding the other end of the pipe r.
func holders(t *testing.T, r *os.File) string {
	t.Helper()
	target, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", r.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range fds {
		if l, _ := os.Readlink(fd); l == target && !strings.HasPrefix(fd, fmt.Sprintf("/proc/%d/", os.Getpid())) {
			cmdline, _ := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(fd)), "cmdline"))
			out = append(out, fd+" "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return strings.Join(out, "\n")
}
