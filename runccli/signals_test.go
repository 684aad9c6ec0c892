package runccli

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// signalChildEnv makes the test binary the child of TestEndingSignals.
const signalChildEnv = "BULWARK_TEST_ENDING_SIGNALS_CHILD"

// TestEndingSignals: once a foreground run has caught its signals (catchSignals), before its
// container exists, no signal ends or stops it — each is sent by kill to a child that did the
// same, which must exit 0 on its own. Signals 32 and 34 are left out: the Go runtime never
// catches them, so they end any Go program, before this list as after.
func TestEndingSignals(t *testing.T) {
	if os.Getenv(signalChildEnv) != "" {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for sig := syscall.Signal(1); sig <= 64; sig++ {
		if sig == unix.SIGKILL || sig == unix.SIGSTOP || sig == 32 || sig == 34 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if status := sendToChild(t, exe, sig); status.Exited() && status.ExitStatus() == 0 {
				return
			} else if status.Stopped() {
				t.Errorf("%v (%d) stopped a program that caught its signals", sig, int(sig))
			} else {
				t.Errorf("%v (%d) ended a program that caught its signals: %v", sig, int(sig), status)
			}
		}()
	}
	wg.Wait()
}

// TestEndingSignalsChild is TestEndingSignals's child: it catches its signals as a foreground
// run does, says so and exits 0 after a while unless a signal ends or stops it.
func TestEndingSignalsChild(t *testing.T) {
	if os.Getenv(signalChildEnv) == "" {
		t.Skip("the child of TestEndingSignals")
	}
	if err := <-catchSignals(make(chan os.Signal, 64)); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("caught\n")
	time.Sleep(300 * time.Millisecond)
	os.Exit(0)
}

// sendToChild starts the child, sends it sig once it has caught its signals and returns how it
// ended or stopped (a stopped child is killed).
func sendToChild(t *testing.T, exe string, sig syscall.Signal) unix.WaitStatus {
	cmd := exec.Command(exe, "-test.run=^TestEndingSignalsChild$")
	cmd.Env = append(os.Environ(), signalChildEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "caught\n" {
		unix.Kill(pid, unix.SIGKILL)
		unix.Wait4(pid, nil, 0, nil)
		t.Fatalf("child for %v: %q %v", sig, line, err)
	}
	if err := unix.Kill(pid, sig); err != nil {
		t.Fatal(err)
	}
	var status unix.WaitStatus
	if _, err := unix.Wait4(pid, &status, unix.WUNTRACED, nil); err != nil {
		t.Fatal(err)
	}
	if status.Stopped() {
		unix.Kill(pid, unix.SIGKILL)
		unix.Wait4(pid, nil, 0, nil)
	}
	return status
}

// relayChildEnv makes the test binary the child of TestSignalsRelayed.
const relayChildEnv = "BULWARK_TEST_RELAY_CHILD"

// TestSignalsRelayed: once catchSignals is done, every signal a foreground run relays reaches
// the channel it forwards from — those sigcatch catches and the fault signals os/signal does —
// each sent by kill, one at a time, to a child that prints what it receives.
func TestSignalsRelayed(t *testing.T) {
	if os.Getenv(relayChildEnv) != "" {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestSignalsRelayChild$")
	cmd.Env = append(os.Environ(), relayChildEnv+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "caught" {
		t.Fatalf("child: %q %v", lines.Text(), lines.Err())
	}
	var sigs []syscall.Signal
	for _, s := range caughtSignals() {
		sigs = append(sigs, syscall.Signal(s))
	}
	if len(sigs) != 49 {
		t.Errorf("sigcatch catches %d signals, want 49", len(sigs))
	}
	for _, s := range faultSignals {
		sigs = append(sigs, s.(syscall.Signal))
	}
	for _, s := range sigs {
		if err := unix.Kill(cmd.Process.Pid, s); err != nil {
			t.Fatal(err)
		}
		if !lines.Scan() {
			t.Fatalf("child ended after signal %d: %v", int(s), lines.Err())
		}
		if got, want := lines.Text(), strconv.Itoa(int(s)); got != want {
			t.Errorf("sent signal %s, child received %s", want, got)
		}
	}
}

// TestSignalsRelayChild is TestSignalsRelayed's child: it catches every signal as a foreground
// run does and prints the number of each it receives, until its parent kills it.
func TestSignalsRelayChild(t *testing.T) {
	if os.Getenv(relayChildEnv) == "" {
		t.Skip("the child of TestSignalsRelayed")
	}
	sigc := make(chan os.Signal, 64)
	if err := <-catchSignals(sigc); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("caught\n")
	for s := range sigc {
		os.Stdout.WriteString(strconv.Itoa(int(s.(syscall.Signal))) + "\n")
	}
}
