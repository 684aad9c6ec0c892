package memfdnoexec

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Raise sets the knob in the child's pid namespace only: the host's value stays, and no thread
// of the caller is left creating its children in the child's pid namespace.
func TestRaiseInChildPidNamespace(t *testing.T) {
	if os.Geteuid() != 0 || !Supported() {
		t.Skip("needs root and vm.memfd_noexec (Linux 6.3)")
	}
	host := readSysctl(t)
	cmd := exec.Command("/bin/sh", "-c", "read x; cat "+Sysctl)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer in.Close()
	if err := Raise(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	in.Write([]byte("\n"))
	got, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(got) != "2" {
		t.Errorf("vm.memfd_noexec in the child's pid namespace is %q, want 2", got)
	}
	if now := readSysctl(t); now != host {
		t.Errorf("the host's vm.memfd_noexec changed from %s to %s", host, now)
	}
	own, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		t.Fatal(err)
	}
	tasks, _ := filepath.Glob("/proc/self/task/*/ns/pid_for_children")
	for _, p := range tasks {
		if ns, err := os.Readlink(p); err == nil && ns != own {
			t.Errorf("%s is %s, not the caller's own %s", p, ns, own)
		}
	}
}

func readSysctl(t *testing.T) string {
	b, err := os.ReadFile(Sysctl)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
