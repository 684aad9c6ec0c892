package attacks

import (
	"strings"
	"testing"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

// TestShocker replays the 2014 Shocker breakout: open_by_handle_at with brute-forced handles for
// the root inode of the filesystem under the container's rootfs (the host's). Two independent
// layers stop it: seccomp answers EPERM to the syscall, and CAP_DAC_READ_SEARCH, which the
// kernel requires for it, is in no capability set and refused when a spec asks for it.
func TestShocker(t *testing.T) {
	e := testenv.NewEnv(t, "tenant-attacks")
	r, _ := e.Run(testenv.Spec(testenv.ProbeArgs("shocker")))
	s := r.Shocker
	if len(s.Opened) != 0 {
		t.Fatalf("ESCAPE: open_by_handle_at resolved host inodes: %v", s.Opened)
	}
	if s.Attempts == 0 {
		t.Fatalf("no attempt made: %+v", s)
	}
	if len(s.Errnos) != 1 || s.Errnos["EPERM"] != s.Attempts {
		t.Errorf("errnos %v over %d attempts, want EPERM for every one (seccomp)", s.Errnos, s.Attempts)
	}
	if s.CapDacReadSearch {
		t.Errorf("CAP_DAC_READ_SEARCH is in the container's capability sets")
	}

	// name_to_handle_at needs no capability: its EPERM shows seccomp answered, not the kernel.
	r, _ = e.Run(testenv.Spec(testenv.ProbeArgs("forbidden")))
	for _, op := range []string{"name_to_handle_at", "open_by_handle_at"} {
		if got := r.Forbidden[op]; got != "EPERM" {
			t.Errorf("%s: %q, want EPERM from seccomp", op, got)
		}
	}

	// The capability layer on its own: asking for CAP_DAC_READ_SEARCH is refused, with the reason.
	err := testenv.FloorRefusal(e.RT, testenv.Spec(testenv.ProbeArgs(), testenv.WithCaps("CAP_DAC_READ_SEARCH")))
	if err == nil || !strings.Contains(err.Error(), "DAC_READ_SEARCH") {
		t.Errorf("Floor with CAP_DAC_READ_SEARCH: %v, want a refusal naming it", err)
	}
}
