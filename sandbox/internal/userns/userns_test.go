package userns

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The namespace maps exactly the range asked for, and nothing of its holder is left once it is
// released: no child process, no descriptor.
func TestNewMapsRange(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Skip("needs util-linux nsenter")
	}
	before := openFDs(t)
	h, err := Start(0)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Map(3000000, 3100000, 65536); err != nil {
		t.Fatal(err)
	}
	fd, err := h.Open("user")
	if err != nil {
		t.Fatal(err)
	}
	h.Release()
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

// The namespaces made with the user namespace are new (not the caller's) and owned by it, as
// with one clone of all of them; a type not asked for stays the caller's.
func TestStartOwnsNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	h, err := Start(unix.CLONE_NEWNET | unix.CLONE_NEWIPC)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release()
	user := open(t, h, "user")
	for name, own := range map[string]bool{"net": true, "ipc": true, "uts": false} {
		fd := open(t, h, name)
		self := nsID(t, "/proc/self/ns/"+name)
		if got := fdID(t, fd); (got != self) != own {
			t.Errorf("%s namespace %v, the caller's %v: new = %v, want %v", name, got, self, got != self, own)
		}
		if !own {
			continue
		}
		owner, err := unix.IoctlRetInt(fd, unix.NS_GET_USERNS)
		if err != nil {
			t.Fatalf("%s: NS_GET_USERNS: %v", name, err)
		}
		if got, want := fdID(t, owner), fdID(t, user); got != want {
			t.Errorf("%s namespace is owned by user namespace %v, want the new one %v", name, got, want)
		}
		unix.Close(owner)
	}
	if _, err := Start(unix.CLONE_NEWNS); err == nil {
		t.Error("Start made a mount namespace apart")
	}
}

func open(t *testing.T, h *Holder, name string) int {
	t.Helper()
	fd, err := h.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func fdID(t *testing.T, fd int) [2]uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	return [2]uint64{st.Dev, st.Ino}
}

func nsID(t *testing.T, path string) [2]uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return [2]uint64{st.Dev, st.Ino}
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
