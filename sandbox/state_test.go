package sandbox

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
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

// TestValidateID: the hand-written check accepts exactly what the id pattern
// [A-Za-z0-9][A-Za-z0-9_.-]{0,127} does.
func TestValidateID(t *testing.T) {
	pattern := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	ids := []string{"", "a", "Z9", "a_b.c-d", "_a", ".a", "-a", "a/b", "a b", "a\n", "a\x00", "é", "aé",
		"..", "a..", strings.Repeat("a", 128), strings.Repeat("a", 129), "0" + strings.Repeat("-", 127)}
	for c := 0; c < 256; c++ { // every byte first and second
		ids = append(ids, string([]byte{byte(c)}), "a"+string([]byte{byte(c)}))
	}
	for _, id := range ids {
		if got, want := ValidateID(id) == nil, pattern.MatchString(id); got != want {
			t.Errorf("ValidateID(%q) accepted %v, the pattern %v", id, got, want)
		}
	}
}
