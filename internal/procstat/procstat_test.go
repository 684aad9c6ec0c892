package procstat

import (
	"os"
	"testing"
	"time"
)

func TestSelf(t *testing.T) {
	pid := os.Getpid()
	start := StartTime(pid)
	if start == 0 || !Alive(pid, start) || Alive(pid, start+1) {
		t.Fatalf("self: start %d, alive %v", start, Alive(pid, start))
	}
	if Parent(pid) != os.Getppid() {
		t.Errorf("parent %d, want %d", Parent(pid), os.Getppid())
	}
	if s := State(pid); s != "R" && s != "S" {
		t.Errorf("state %q", s)
	}
	if StartTime(-1) != 0 || State(0) != "" || Alive(0, 0) {
		t.Error("no process reads as one")
	}
}

// TestZombieStatus: an exited child not yet collected is no longer alive, and its wait status
// reads from its stat until it is collected.
func TestZombieStatus(t *testing.T) {
	p, err := os.StartProcess("/bin/sh", []string{"sh", "-c", "exit 7"}, &os.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	start := StartTime(p.Pid)
	for State(p.Pid) != "Z" {
		time.Sleep(5 * time.Millisecond)
	}
	if Alive(p.Pid, start) {
		t.Error("a zombie is alive")
	}
	if ws, ok := ZombieStatus(p.Pid, start); !ok || ws != 7<<8 {
		t.Errorf("zombie status %#x %v, want %#x", ws, ok, 7<<8)
	}
	if _, ok := ZombieStatus(p.Pid, start+1); ok {
		t.Error("another process's status was read")
	}
	p.Wait()
	if _, ok := ZombieStatus(p.Pid, start); ok {
		t.Error("status read after the child was collected")
	}
}

// TestReadWhole: a proc file longer than read's first buffer is read whole (status is over 1 KiB).
func TestReadWhole(t *testing.T) {
	want, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	if got := read("/proc/self/status"); len(want) <= 1024 || len(got) != len(want) || string(got[:10]) != string(want[:10]) {
		t.Fatalf("read %d bytes of /proc/self/status, want %d (over 1024)", len(got), len(want))
	}
	if read("/proc/self/no-such-file") != nil {
		t.Fatal("a missing file read as one")
	}
}
