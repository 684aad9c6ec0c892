package setup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestCommandStatus: the failure to resolve a command maps to Docker's statuses, and the message
// carries the words Docker's CLI and daemon match on (runc's wording).
func TestCommandStatus(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	find := func(arg0 string) error {
		_, err := lookPath(arg0, []string{"PATH=" + dir})
		if err == nil {
			t.Fatalf("lookPath(%q) succeeded", arg0)
		}
		return fmt.Errorf("create: %w", stepError("process", stepFindExecutable, arg0, err))
	}
	for _, tc := range []struct {
		arg0, words string
		code        int
	}{
		{"nosuchcommand", "executable file not found", StatusNotFound},
		{filepath.Join(dir, "missing"), "no such file or directory", StatusNotFound},
		{dir, "permission denied", StatusCannotExecute}, // a directory
		{plain, "permission denied", StatusCannotExecute},
	} {
		err := find(tc.arg0)
		if code, ok := CommandStatus(err); !ok || code != tc.code {
			t.Errorf("%s: CommandStatus = %d, %v; want %d", tc.arg0, code, ok, tc.code)
		}
		if !strings.Contains(err.Error(), tc.words) {
			t.Errorf("%s: %q lacks %q", tc.arg0, err, tc.words)
		}
	}
	if _, ok := CommandStatus(stepError("mounts", "pivot_root", "", syscall.EPERM)); ok {
		t.Error("a pivot_root failure counted as a command failure")
	}
	if _, ok := CommandStatus(errors.New("x")); ok {
		t.Error("a plain error counted as a command failure")
	}
	// After the fifo, execve's errno goes through the same mapping.
	for e, code := range map[syscall.Errno]int{syscall.E2BIG: 126, syscall.ENOEXEC: 126, syscall.EACCES: 126, syscall.ENOENT: 127} {
		if got := errnoStatus(e); got != code {
			t.Errorf("errnoStatus(%v) = %d, want %d", e, got, code)
		}
	}
}
