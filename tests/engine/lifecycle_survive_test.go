package engine

import (
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/procstat"
	"bulwark.dev/bulwark/tests/internal/clitest"
)

// waitWorkerServing waits until a supervisor worker answers on the state root's socket (it
// has adopted the containers by then).
func waitWorkerServing(t *testing.T, root string) {
	t.Helper()
	sock := filepath.Join(root, "supervisor", "sock")
	waitFor(t, func() bool {
		c, err := net.Dial("unix", sock)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

// TestDetachedTTYOutlivesWorker (issue 10): the terminal of a run -d -t container outlives the
// supervisor's worker: SIGKILLed, the worker gives way to a new one, which serves the same
// terminal — the workload never saw a hangup, attach reaches it, its exit status comes back.
// (The worker held the only master: its death hung the terminal up and the shell died of
// SIGHUP.)
func TestDetachedTTYOutlivesWorker(t *testing.T) {
	f := newFixture(t)
	id := f.name(t, "ttysurv")
	clitest.Must(t, f.root, "run", "-d", "-t", "--name", id, "busybox:1",
		"sh", "-c", `trap "echo hangup; exit 9" HUP; while read l; do echo "in:$l"; done; exit 3`)
	waitFor(t, func() bool { return inspect(t, f, id).Status == "running" })

	killSupervisor(t, f.root, "worker")
	waitFor(t, func() bool { return len(supervisorProcs(t, f.root)["worker"]) == 1 })
	waitWorkerServing(t, f.root)
	if c := inspect(t, f, id); c.Status != "running" {
		t.Fatalf("after its worker was killed the -t container is %s (exit %+v)", c.Status, c.Exit)
	}

	master, slave := ptyPair(t, 24, 80)
	var scr screen
	go scr.read(master)
	cmd := onTerminal(t, slave, f.root, "attach", id)
	time.Sleep(300 * time.Millisecond)
	master.Write([]byte("abc\r"))
	scr.wait(t, "in:abc")
	master.Write([]byte{4}) // ctrl-d: the workload exits 3
	if code := exitCode(t, cmd); code != 3 {
		t.Errorf("attach through the new worker: exit %d, want 3", code)
	}
	waitFor(t, func() bool { return inspect(t, f, id).Exit != nil })
	if logs := clitest.Run(t, f.root, "logs", id).Stdout; !strings.Contains(logs, "in:abc") || strings.Contains(logs, "hangup") {
		t.Errorf("logs: %q", logs)
	}
	clitest.Must(t, f.root, "rm", id)
	f.assertNothingLeft(t)
}

// TestExitStatusAfterSupervisorDied (issue 10): with both supervisor processes SIGKILLed, a
// container still running when a supervisor adopts it again keeps being tracked — its real exit
// status is recorded (from its pidfd, or its zombie), though it is no longer the reaper's
// child — and one whose status nothing kept (it ended and was collected while no supervisor
// ran) is recorded as exited, code -1, "exit status lost: supervisor died"; never running,
// never 0. The test process is the supervisor's subreaper, so the containers become its
// children when the supervisor dies: it collects the second one itself and plays the init that
// collects the first.
func TestExitStatusAfterSupervisorDied(t *testing.T) {
	f := newFixture(t)
	// Set first: the supervisor this test's commands start is reparented to this process when
	// they exit, and its children to this process when it dies.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	var ours []int // supervisor processes, this process's children
	t.Cleanup(func() {
		unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
		for _, pid := range ours {
			if procstat.Parent(pid) == syscall.Getpid() {
				syscall.Kill(pid, syscall.SIGKILL)
				syscall.Wait4(pid, nil, 0, nil)
			}
		}
	})
	waiter := `trap "exit $CODE" USR1; echo ready; while :; do sleep 0.1; done`
	tracked, lost := f.name(t, "tracked"), f.name(t, "lost")
	clitest.Must(t, f.root, "run", "-d", "--name", tracked, "-e", "CODE=3", "busybox:1", "sh", "-c", waiter)
	clitest.Must(t, f.root, "run", "-d", "--name", lost, "-e", "CODE=4", "busybox:1", "sh", "-c", waiter)
	for _, id := range []string{tracked, lost} {
		waitFor(t, func() bool { return strings.Contains(clitest.Must(t, f.root, "logs", id), "ready") })
	}
	trackedRec, lostRec := inspectRecord(t, f, tracked), inspectRecord(t, f, lost)
	trackedPid, lostPid := trackedRec.Pid, lostRec.Pid
	procs := supervisorProcs(t, f.root)
	ours = append(ours, procs["reaper"]...)
	ours = append(ours, procs["worker"]...)
	killSupervisor(t, f.root, "reaper", "worker")
	for _, pid := range ours {
		syscall.Wait4(pid, nil, 0, nil)
	}

	// Ends and is collected (by this process) while no supervisor runs: nothing keeps its status.
	signalRecorded(t, lostRec, syscall.SIGUSR1)
	if _, err := syscall.Wait4(lostPid, nil, 0, nil); err != nil {
		t.Fatalf("collect %d: %v", lostPid, err)
	}

	clitest.Must(t, f.root, "ps", "-a") // a supervisor adopts both again
	waitWorkerServing(t, f.root)
	procs = supervisorProcs(t, f.root)
	ours = append(ours, procs["reaper"]...)
	ours = append(ours, procs["worker"]...)
	if r := inspectRecord(t, f, tracked); r.Status != "running" {
		t.Fatalf("%s after the supervisor was killed: %s", tracked, r.Status)
	}

	// Ends under the new supervisor, collected by this process, not the reaper.
	signalRecorded(t, trackedRec, syscall.SIGUSR1)
	waitFor(t, func() bool { return procstat.State(trackedPid) == "Z" || procstat.State(trackedPid) == "" })
	syscall.Wait4(trackedPid, nil, 0, nil)
	waitFor(t, func() bool { return inspectRecord(t, f, tracked).Exit != nil })
	if r := inspectRecord(t, f, tracked); r.Status != "stopped" || r.Exit.Code != 3 || r.Exit.Error != "" {
		t.Errorf("adopted after the supervisor died, then ended: status %s exit %+v, want stopped with 3", r.Status, *r.Exit)
	}
	waitFor(t, func() bool { return inspectRecord(t, f, lost).Exit != nil })
	if r := inspectRecord(t, f, lost); r.Status != "stopped" || r.Exit.Code != -1 || !strings.Contains(r.Exit.Error, "exit status lost: supervisor died") {
		t.Errorf("ended while no supervisor ran: status %s exit %+v", r.Status, *r.Exit)
	}
	if ps := clitest.Must(t, f.root, "ps", "-a"); !strings.Contains(ps, "exited (status unknown)") || !strings.Contains(ps, "exited (3)") {
		t.Errorf("ps -a:\n%s", ps)
	}
	for _, id := range []string{tracked, lost} {
		clitest.Must(t, f.root, "rm", id)
	}
	f.assertNothingLeft(t)
}
