package engine

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/procstat"
	"bulwark.dev/bulwark/tests/internal/clitest"
)

// supervisorProcs returns the pids of the state root's supervisor processes by role ("reaper",
// "worker"), read from their environment.
func supervisorProcs(t testing.TB, root string) map[string][]int {
	t.Helper()
	dir := "_BULWARK_SUPERVISOR_DIR=" + filepath.Join(root, "supervisor")
	out := map[string][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			continue
		}
		env := strings.Split(string(b), "\x00")
		if !slices.Contains(env, dir) {
			continue
		}
		for _, role := range []string{"reaper", "worker"} {
			if slices.Contains(env, "_BULWARK_SUPERVISOR="+role) {
				out[role] = append(out[role], pid)
			}
		}
	}
	return out
}

// killSupervisor SIGKILLs the supervisor's processes of the given roles and waits until they
// are gone.
func killSupervisor(t *testing.T, root string, roles ...string) {
	t.Helper()
	procs := supervisorProcs(t, root)
	for _, role := range roles {
		if len(procs[role]) != 1 {
			t.Fatalf("supervisor %s processes: %v (want one)", role, procs)
		}
		// One gone already (a worker leaves once its reaper has died) is what is wanted.
		err := signalPinned(procs[role][0], func(pid int) bool { return slices.Contains(supervisorProcs(t, root)[role], pid) }, syscall.SIGKILL)
		if err != nil && !errors.Is(err, errGone) && !errors.Is(err, unix.ESRCH) {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool {
		for _, role := range roles {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", procs[role][0])); err == nil {
				if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", procs[role][0])); !strings.Contains(string(b), ") Z ") {
					return false
				}
			}
		}
		return true
	})
}

type record struct {
	Status       string `json:"status"`
	Pid          int    `json:"pid"`
	PidStart     uint64 `json:"pidStart"`
	RestartCount int    `json:"restartCount"`
	Exit         *struct {
		Code  int    `json:"code"`
		Error string `json:"error"`
	} `json:"exit"`
}

func inspectRecord(t *testing.T, f *fixture, id string) record {
	t.Helper()
	var out []record
	if err := json.Unmarshal([]byte(clitest.Must(t, f.root, "inspect", id)), &out); err != nil || len(out) != 1 {
		t.Fatalf("inspect %s: %v", id, err)
	}
	return out[0]
}

// signalRecorded sends sig to the init of the container r records: the process its pid and its
// start time name, never another that got the pid since (any of the host's).
func signalRecorded(t *testing.T, r record, sig syscall.Signal) {
	t.Helper()
	if err := signalPinned(r.Pid, func(pid int) bool { return procstat.StartTime(pid) == r.PidStart }, sig); err != nil {
		t.Fatal(err)
	}
}

// errGone: the process meant is gone (its pid may name another).
var errGone = errors.New("the process meant is gone")

// signalPinned sends sig to the process pid once is says it is the one meant. The process is
// pinned first (a pidfd: what it refers to cannot change) and checked after, so a pid reused
// since it was read is never signalled; pid 0 or below would be a process group, or every
// process.
func signalPinned(pid int, is func(pid int) bool, sig syscall.Signal) error {
	if pid <= 0 {
		return fmt.Errorf("no process to signal (pid %d)", pid)
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("process %d: %w", pid, errGone)
	}
	if err != nil {
		return fmt.Errorf("pin process %d: %w", pid, err)
	}
	defer unix.Close(fd)
	if !is(pid) {
		return fmt.Errorf("process %d: %w", pid, errGone)
	}
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil {
		return fmt.Errorf("signal process %d: %w", pid, err)
	}
	return nil
}

// lastLine returns the number the counting workload logged last.
func lastLine(t *testing.T, f *fixture, id string) int {
	t.Helper()
	lines := strings.Fields(clitest.Must(t, f.root, "logs", id))
	if len(lines) == 0 {
		return -1
	}
	n, _ := strconv.Atoi(lines[len(lines)-1])
	return n
}

// TestSupervisorKilled (issue 10): the supervisor's worker and then its reaper are SIGKILLed
// with containers running. Every container keeps running and is listed running; its log goes
// on once a supervisor is back (started by the reaper, or by the next command); stop works; a
// container that ended while the worker was dead has its real exit status, one that ended while
// the whole supervisor was dead is stopped with its zombie's status or "exit status lost" —
// never "running".
func TestSupervisorKilled(t *testing.T) {
	f := newFixture(t)
	counter := `i=0; while :; do echo $i; i=$((i+1)); sleep 0.1; done`
	waiter := `trap "exit $CODE" USR1; echo ready; while :; do sleep 0.1; done`
	var counters, waiters []string
	for i := range 3 {
		id := f.name(t, fmt.Sprintf("count%d", i))
		clitest.Must(t, f.root, "run", "-d", "--name", id, "busybox:1", "sh", "-c", counter)
		counters = append(counters, id)
	}
	for i := range 2 {
		id := f.name(t, fmt.Sprintf("wait%d", i))
		clitest.Must(t, f.root, "run", "-d", "--name", id, "-e", fmt.Sprintf("CODE=%d", 3+i), "busybox:1", "sh", "-c", waiter)
		waiters = append(waiters, id)
	}
	for _, id := range waiters {
		waitFor(t, func() bool { return strings.Contains(clitest.Must(t, f.root, "logs", id), "ready") })
	}
	for _, id := range counters {
		waitFor(t, func() bool { return lastLine(t, f, id) >= 2 })
	}

	// The worker dies; the reaper keeps every init and records the exit of the one that ends.
	killSupervisor(t, f.root, "worker")
	signalRecorded(t, inspectRecord(t, f, waiters[0]), syscall.SIGUSR1)
	waitFor(t, func() bool { return inspectRecord(t, f, waiters[0]).Exit != nil })
	if r := inspectRecord(t, f, waiters[0]); r.Exit.Code != 3 || r.Status != "stopped" {
		t.Errorf("ended while the worker was dead: status %s exit %+v, want stopped with 3", r.Status, *r.Exit)
	}
	for _, id := range counters {
		if r := inspectRecord(t, f, id); r.Status != "running" {
			t.Errorf("%s after the worker was killed: %s", id, r.Status)
		}
		n := lastLine(t, f, id)
		waitFor(t, func() bool { return lastLine(t, f, id) >= n+3 })
	}

	// The whole supervisor dies: the containers run on, untracked only until the next command.
	killSupervisor(t, f.root, "reaper", "worker")
	waiter1 := inspectRecord(t, f, waiters[1]) // inspect starts a supervisor again: stop it
	pid := waiter1.Pid
	killSupervisor(t, f.root, "reaper", "worker")
	signalRecorded(t, waiter1, syscall.SIGUSR1)
	waitFor(t, func() bool {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		return len(b) == 0 || strings.Contains(string(b), ") Z ")
	})
	ps := clitest.Must(t, f.root, "ps", "-a") // adopts again
	for _, id := range counters {
		if !strings.Contains(ps, id) {
			t.Errorf("ps -a after the supervisor was killed lacks %s:\n%s", id, ps)
		}
		if r := inspectRecord(t, f, id); r.Status != "running" {
			t.Errorf("%s after the supervisor was killed: %s", id, r.Status)
		}
		n := lastLine(t, f, id)
		waitFor(t, func() bool { return lastLine(t, f, id) >= n+3 })
	}
	// Its status is its zombie's while no one has collected it (the machine's init may not
	// have yet), else lost (TestExitStatusAfterSupervisorDied makes sure of the second case).
	waitFor(t, func() bool { return inspectRecord(t, f, waiters[1]).Exit != nil })
	r := inspectRecord(t, f, waiters[1])
	lost := r.Exit.Code == -1 && strings.Contains(r.Exit.Error, "exit status lost: supervisor died")
	if r.Status != "stopped" || !(lost || r.Exit.Code == 4 && r.Exit.Error == "") {
		t.Errorf("ended while no supervisor ran: status %s exit %+v", r.Status, *r.Exit)
	}
	if ps := clitest.Must(t, f.root, "ps", "-a"); lost && !strings.Contains(ps, "exited (status unknown)") {
		t.Errorf("ps -a does not say the status is unknown:\n%s", ps)
	}
	for _, id := range counters {
		clitest.Must(t, f.root, "stop", "-t", "1", id)
		waitFor(t, func() bool { return inspectRecord(t, f, id).Exit != nil })
		if r := inspectRecord(t, f, id); r.Status != "stopped" {
			t.Errorf("%s after stop: %s", id, r.Status)
		}
	}
	for _, id := range append(counters, waiters...) {
		clitest.Must(t, f.root, "rm", id)
	}
	f.assertNothingLeft(t)
}

// TestForegroundRunKilled (issue 10): a SIGKILLed foreground `bulwark run --rm` leaves nothing
// behind — its container is killed with it and removed by the supervisor — and one without --rm
// is stopped with its exit status unknown, never left running untracked.
func TestForegroundRunKilled(t *testing.T) {
	f := newFixture(t)
	for _, rm := range []bool{true, false} {
		id := f.name(t, "fg")
		args := []string{"--root", f.root, "run", "--name", id}
		if rm {
			args = append(args, "--rm")
		}
		cmd := startReady(t, args...)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if rm {
			waitFor(t, func() bool { return clitest.Run(t, f.root, "inspect", id).Code != 0 })
			continue
		}
		waitFor(t, func() bool { return inspectRecord(t, f, id).Exit != nil })
		if r := inspectRecord(t, f, id); r.Status != "stopped" || !strings.Contains(r.Exit.Error, "its client") {
			t.Errorf("killed foreground run: status %s exit %+v", r.Status, *r.Exit)
		}
		clitest.Must(t, f.root, "rm", id)
	}
	f.assertNothingLeft(t)
}

// startReady starts `bulwark ARGS busybox:1 sh -c "echo ready; sleep 100"` (a foreground run)
// and returns once the workload said it is ready.
func startReady(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(clitest.Bin, append(args, "busybox:1", "sh", "-c", "echo ready; sleep 100")...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("workload said %q, %v", line, err)
	}
	return cmd
}

// TestRestartPolicy (issue 10): on-failure:2 restarts a failing container exactly twice (with
// back-off) and then leaves it stopped; always restarts one that exits 0 until it is stopped;
// start and restart start a stopped container again with its log kept.
func TestRestartPolicy(t *testing.T) {
	f := newFixture(t)
	id := f.name(t, "onfail")
	clitest.Must(t, f.root, "run", "-d", "--name", id, "--restart", "on-failure:2", "busybox:1", "sh", "-c", "echo run; exit 1")
	// Settled once the supervisor has nothing left to do (a pending restart keeps it).
	waitFor(t, func() bool {
		r := inspectRecord(t, f, id)
		return r.Exit != nil && r.RestartCount == 2 && len(supervisorProcs(t, f.root)["worker"]) == 0
	})
	if r := inspectRecord(t, f, id); r.Exit.Code != 1 || r.Status != "stopped" {
		t.Errorf("after its restarts: status %s exit %+v", r.Status, *r.Exit)
	}
	if n := strings.Count(clitest.Must(t, f.root, "logs", id), "run\n"); n != 3 {
		t.Errorf("on-failure:2 ran %d times, want 3", n)
	}
	if n := strings.Count(strings.Join(actions(f.records(t, id)), " "), "container.restart"); n != 2 {
		t.Errorf("%d restart records, want 2", n)
	}

	always := f.name(t, "always")
	clitest.Must(t, f.root, "run", "-d", "--name", always, "--restart", "always", "busybox:1", "sh", "-c", "echo up; sleep 0.2")
	waitFor(t, func() bool { return inspectRecord(t, f, always).RestartCount >= 2 })
	clitest.Must(t, f.root, "stop", "-t", "1", always)
	waitFor(t, func() bool {
		r := inspectRecord(t, f, always)
		return r.Exit != nil && len(supervisorProcs(t, f.root)["worker"]) == 0
	})
	before := inspectRecord(t, f, always)
	if before.Status != "stopped" {
		t.Errorf("always after stop: %s", before.Status)
	}
	clitest.Must(t, f.root, "start", always)
	waitFor(t, func() bool { return inspectRecord(t, f, always).RestartCount > before.RestartCount })

	plain := f.name(t, "plain")
	clitest.Must(t, f.root, "run", "-d", "--name", plain, "busybox:1", "sh", "-c", "echo hello; sleep 60")
	waitFor(t, func() bool { return strings.Contains(clitest.Must(t, f.root, "logs", plain), "hello") })
	clitest.Must(t, f.root, "restart", "-t", "1", plain)
	waitFor(t, func() bool { return strings.Count(clitest.Must(t, f.root, "logs", plain), "hello") == 2 })
	if r := inspectRecord(t, f, plain); r.Status != "running" || r.RestartCount != 1 {
		t.Errorf("after restart: status %s restarts %d", r.Status, r.RestartCount)
	}
	clitest.Must(t, f.root, "stop", "-t", "1", plain)
	waitFor(t, func() bool { return inspectRecord(t, f, plain).Exit != nil })
	clitest.Must(t, f.root, "start", plain)
	waitFor(t, func() bool { return strings.Count(clitest.Must(t, f.root, "logs", plain), "hello") == 3 })

	if r := clitest.Run(t, f.root, "run", "--rm", "-d", "--restart", "always", "busybox:1", "true"); r.Code != 125 || !strings.Contains(r.Stderr, "conflicts with --rm") {
		t.Errorf("--restart with --rm: exit %d %s", r.Code, r.Stderr)
	}
	if r := clitest.Run(t, f.root, "run", "--restart", "on-failure:x", "-d", "busybox:1", "true"); r.Code != 125 || !strings.Contains(r.Stderr, "on-failure[:N]") {
		t.Errorf("bad --restart: exit %d %s", r.Code, r.Stderr)
	}
	for _, c := range []string{id, always, plain} {
		clitest.Must(t, f.root, "rm", "-f", c)
	}
	f.assertNothingLeft(t)
}

// TestSignalPinned: a process that is not the one meant any more (its pid reused) is not
// signalled, nor is a pid of 0 or below (a process group, every process). The supervisor tests
// signalled the pid a record named with kill(2), and a host's containerd once got the SIGUSR1.
func TestSignalPinned(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	pid := cmd.Process.Pid
	if err := signalPinned(pid, func(int) bool { return false }, syscall.SIGKILL); !errors.Is(err, errGone) {
		t.Errorf("another process behind the pid: %v, want it left alone", err)
	}
	for _, p := range []int{0, -1} {
		if err := signalPinned(p, func(int) bool { return true }, syscall.Signal(0)); err == nil {
			t.Errorf("pid %d signalled", p)
		}
	}
	if !procstat.Alive(pid, procstat.StartTime(pid)) {
		t.Fatal("the process not meant was signalled")
	}
	if err := signalPinned(pid, func(p int) bool { return procstat.StartTime(p) != 0 }, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil {
		t.Error("the process meant was not signalled")
	}
}
