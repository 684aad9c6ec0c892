package runc

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

// leakedFD is the descriptor number a caller leaks into bulwark-runc in TestLeakedDescriptor: a
// shell's 251 did (the one the benchmarks were run from).
const leakedFD = 200

// leaking runs bulwark-runc with args and a descriptor at leakedFD that lacks close-on-exec, as
// a careless caller leaves one, and returns its output.
func (c *cli) leaking(args ...string) string {
	c.t.Helper()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		c.t.Fatal(err)
	}
	defer devnull.Close()
	// stdout on a file, not a pipe: a container created by the command inherits it (see run).
	out, err := os.CreateTemp(c.io, "stdout-")
	if err != nil {
		c.t.Fatal(err)
	}
	defer out.Close()
	cmd := c.command(args...)
	cmd.Stdout, cmd.Stderr = out, out
	// Entry i becomes descriptor 3+i; the nil ones are closed in the child.
	cmd.ExtraFiles = make([]*os.File, leakedFD-2)
	cmd.ExtraFiles[leakedFD-3] = devnull
	err = cmd.Run()
	b, rerr := os.ReadFile(out.Name())
	if err != nil {
		c.t.Fatalf("bulwark-runc %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	if rerr != nil {
		c.t.Fatal(rerr)
	}
	return string(b)
}

// fdSize reads FDSize (the slots of the descriptor table) from a /proc/<pid>/status text.
func fdSize(t *testing.T, status string) string {
	t.Helper()
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, "FDSize:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no FDSize in %q", status)
	return ""
}

// TestLeakedDescriptor (issue 14): a descriptor the runtime's caller leaked never reaches a
// container's init or an exec'd process, and neither does the size it gave the descriptor
// table — the kernel sizes a fork's table by the highest open descriptor, so a leaked 200 made
// every container's init keep a 256-slot table (2 kB of kernel memory) for its whole life
// instead of the 64 slots its files_struct embeds.
func TestLeakedDescriptor(t *testing.T) {
	c, leaks := newCLI(t)
	bundle := testenv.Bundle(t, sleeper())
	leaks.Dir(bundle)
	id := leaks.Track(testenv.UniqueID(t))
	c.leaking("create", "--bundle", bundle, id)
	t.Cleanup(func() { c.run("delete", "--force", id) })
	c.leaking("start", id)
	pid := c.state(id).Pid
	// start returns once init is released, as runc's does; init may still be setting up (its
	// own descriptors open) until it has executed the workload.
	awaitComm(t, pid, "sleep")
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	if got := fdSize(t, string(status)); got != "64" {
		t.Errorf("init's descriptor table has %s slots, want 64", got)
	}
	fds, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	if len(fds) != 3 {
		var held []string
		for _, fd := range fds {
			target, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/" + fd.Name())
			held = append(held, fd.Name()+" → "+target)
		}
		t.Errorf("init holds %d descriptors, want stdio only: %s", len(fds), strings.Join(held, ", "))
	}
	out := c.leaking("exec", id, "/bin/sh", "-c", "cat /proc/self/status; ls /proc/self/fd")
	if got := fdSize(t, out); got != "64" {
		t.Errorf("an exec'd process's descriptor table has %s slots, want 64", got)
	}
	if strings.Contains(out, "\n"+strconv.Itoa(leakedFD)+"\n") {
		t.Errorf("the leaked descriptor %d reached the exec'd process:\n%s", leakedFD, out)
	}
}

// awaitComm waits (up to 10 s) until process pid's command name is comm.
func awaitComm(t *testing.T, pid int, comm string) {
	t.Helper()
	path := "/proc/" + strconv.Itoa(pid) + "/comm"
	var got []byte
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		var err error
		if got, err = os.ReadFile(path); err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(string(got)) == comm {
			return
		}
	}
	t.Fatalf("process %d is still %q, not %q, after 10 s", pid, strings.TrimSpace(string(got)), comm)
}
