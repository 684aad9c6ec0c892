package testenv

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// StartRegistry runs Debian's docker-registry (distribution 2.8) on a free loopback port with
// its storage in a temp directory, until the test ends; it skips the test when none is
// installed. It returns the registry's host:port and its storage directory.
func StartRegistry(t *testing.T) (addr, storage string) {
	t.Helper()
	rb, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Skip("docker-registry not installed")
	}
	addr = FreePort(t)
	dir := t.TempDir()
	storage = filepath.Join(dir, "storage")
	cfg := filepath.Join(dir, "config.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", storage, addr)), 0o600)
	cmd := exec.Command(rb, "serve", cfg)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	WaitHTTP(t, "http://"+addr+"/v2/")
	return addr, storage
}

// FreePort returns a loopback address whose port was free a moment ago.
func FreePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// WaitHTTP waits until url answers (5 s at most).
func WaitHTTP(t *testing.T, url string) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not come up", url)
}
