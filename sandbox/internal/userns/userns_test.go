package userns

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The namespace maps exactly the range asked for, and nothing of its holder is left: no child
// process, no descriptor.
func TestNewMapsRange(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Skip("needs util-linux nsenter")
	}
	before := openFDs(t)
	fd, err := New(3000000, 3100000, 65536)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "userns")
	for _, m := range []struct{ file, want string }{{"uid_map", "0 3000000 65536"}, {"gid_map", "0 3100000 65536"}} {
		cmd := exec.Command("nsenter", "--user=/proc/self/fd/3", "cat", "/proc/self/"+m.file)
		cmd.ExtraFiles = []*os.File{f}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v: %s", m.file, err, out)
		}
		if got := strings.Join(strings.Fields(string(out)), " "); got != m.want {
			t.Errorf("%s is %q, want %q", m.file, got, m.want)
		}
	}
	f.Close()
	// The holder is collected behind New.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		left := children()
		if left == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a child is left: %s", left)
		}
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d descriptors open after New, %d before", after, before)
	}
}

// children lists the calling process's children, by thread.
func children() string {
	var out []string
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	for _, p := range tasks {
		if b, _ := os.ReadFile(p); len(strings.TrimSpace(string(b))) > 0 {
			out = append(out, p+": "+strings.TrimSpace(string(b)))
		}
	}
	return strings.Join(out, ", ")
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
