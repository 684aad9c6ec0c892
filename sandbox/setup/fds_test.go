package setup

import (
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// TestOpenFDsSeesLaterDescriptors: openFDs reads /proc/self/status through the descriptor opened
// at the start (selfStatus) and must see the descriptor table as it is now, not as it was then: a
// descriptor opened later, numbered beyond the table's first size (64), is listed, so fdHygiene
// checks it too.
func TestOpenFDsSeesLaterDescriptors(t *testing.T) {
	openSelfStatus()
	if selfStatus < 0 {
		t.Skip("no /proc/self/status")
	}
	defer closeSelfStatus()
	if _, err := openFDs(); err != nil { // the first read, at the old size
		t.Fatal(err)
	}
	fd, err := unix.FcntlInt(uintptr(selfStatus), unix.F_DUPFD_CLOEXEC, 200)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	fds, err := openFDs()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(fds, fd) || !slices.Contains(fds, selfStatus) {
		t.Errorf("openFDs = %v: want descriptors %d and %d among them", fds, selfStatus, fd)
	}
}
