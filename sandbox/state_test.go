package sandbox

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/procstat"
)

// TestStartedFromFifo: Start writes no state; a created container whose init lives is running
// once its exec fifo is gone, created while it is there, and stopped when its init is gone
// whatever the fifo says.
func TestStartedFromFifo(t *testing.T) {
	dir := t.TempDir()
	stored := newStateFile("c", "", DefaultTenant, nil)
	stored.Status = "created"
	stored.Pid = os.Getpid() // an init that lives
	stored.InitStartTime = procstat.StartTime(os.Getpid())
	status := func() Status {
		t.Helper()
		st := *stored
		st.refresh(dir)
		return Status(st.Status)
	}
	if err := unix.Mkfifo(filepath.Join(dir, execFifo), 0o600); err != nil {
		t.Fatal(err)
	}
	if s := status(); s != StatusCreated {
		t.Errorf("with its exec fifo: %s, want created", s)
	}
	if err := os.Remove(filepath.Join(dir, execFifo)); err != nil {
		t.Fatal(err)
	}
	if s := status(); s != StatusRunning {
		t.Errorf("its exec fifo gone: %s, want running", s)
	}
	stored.InitStartTime++ // another process than the init recorded
	if s := status(); s != StatusStopped {
		t.Errorf("its init gone: %s, want stopped", s)
	}
}
