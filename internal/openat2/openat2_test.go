package openat2

import (
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// TestOpenUnderRenames opens a path inside a root while another goroutine renames a directory
// of that root without pause: every open must succeed (the kernel's EAGAIN is retried).
func TestOpenUnderRenames(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "a", "b", "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rfd)
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		x, y := filepath.Join(root, "x"), filepath.Join(root, "y")
		for !stop.Load() {
			_ = os.Rename(x+"0", y+"0")
			_ = os.Mkdir(x+"0", 0o755)
			_ = os.Remove(y + "0")
		}
	}()
	defer func() { stop.Store(true); wg.Wait() }()
	how := &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT}
	for i := 0; i < 20000; i++ {
		fd, err := Open(rfd, "a/../a/b/../b/f", how)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		unix.Close(fd)
	}
}
