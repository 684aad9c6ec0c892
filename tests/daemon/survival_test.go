package daemon

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// kill -9 of bulwarkd leaves its containers running under their monitors; a new daemon on the
// same state root takes up its records: both listed, logs intact, the exit of the one that ended
// meanwhile recorded, and both still stoppable and removable.
func TestDaemonKilledContainersSurvive(t *testing.T) {
	e := startDaemon(t, nil)
	a := e.alice
	e.mustDocker(t, a, "run", "-d", "--name", "long", "busybox:1", "sh", "-c", "echo long-before; exec sleep 300")
	e.mustDocker(t, a, "run", "-d", "--name", "short", "busybox:1", "sh", "-c", "echo short-before; exec sleep 300")
	waitLogs(t, e, a, "long", "long-before")
	pid, err := strconv.Atoi(strings.TrimSpace(e.mustDocker(t, a, "inspect", "-f", "{{.State.Pid}}", "short")))
	if err != nil || pid <= 0 {
		t.Fatalf("short's pid: %v", err)
	}
	// Pinned now, while it is short's (its command is checked): the SIGKILL below goes to no other
	// process that got the pid since.
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatalf("pin short's init %d: %v", pid, err)
	}
	defer unix.Close(pidfd)
	if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); string(b) != "sleep\x00300\x00" {
		t.Fatalf("pid %d is not short's init: %q", pid, b)
	}
	e.kill(t)
	// short ends while no daemon runs.
	if err := unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0); err != nil {
		t.Fatal(err)
	}
	e.start(t)
	out := e.mustDocker(t, a, "ps", "-a", "--format", "{{.Names}} {{.State}}")
	if !strings.Contains(out, "long running") || !strings.Contains(out, "short ") {
		t.Errorf("ps -a after a restart: %q", out)
	}
	if out := e.mustDocker(t, a, "logs", "long"); out != "long-before\n" {
		t.Errorf("logs after a restart: %q", out)
	}
	if out := e.mustDocker(t, a, "wait", "short"); out != "137\n" {
		t.Errorf("wait short (killed while no daemon ran): %q", out)
	}
	if out := e.mustDocker(t, a, "logs", "short"); out != "short-before\n" {
		t.Errorf("short's logs: %q", out)
	}
	e.mustDocker(t, a, "stop", "-t", "0", "long")
	e.mustDocker(t, a, "rm", "long", "short")
	if out := e.mustDocker(t, a, "ps", "-aq"); out != "" {
		t.Errorf("ps -a after rm: %q", out)
	}
}
