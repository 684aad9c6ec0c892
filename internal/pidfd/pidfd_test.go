package pidfd

import (
	"os"
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"
)

// WaitExit returns once the process has exited, not before.
func TestWaitExit(t *testing.T) {
	cmd := exec.Command("sleep", "0.2")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	fd, err := unix.PidfdOpen(cmd.Process.Pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		t.Skipf("no pidfd on this kernel: %v", err)
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	WaitExit(f)
	var st unix.WaitStatus
	// Not reaped yet (this test is its parent): WNOHANG finds it exited, or running.
	if _, err := unix.Wait4(cmd.Process.Pid, &st, unix.WNOHANG, nil); err != nil {
		t.Fatal(err)
	}
	if !st.Exited() {
		t.Error("WaitExit returned while the process was still running")
	}
}
