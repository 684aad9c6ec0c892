package runc

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

// TestHome: with no HOME in the environment, HOME is the process user's home in the image's
// /etc/passwd, or "/" without an entry (runc's rule); a HOME the environment has is kept; an
// exec'd process gets the same; a FIFO at /etc/passwd neither blocks the start nor is read.
func TestHome(t *testing.T) {
	c, leaks := newCLI(t)
	const passwd = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"
	home := func(uid uint32, env ...string) string {
		t.Helper()
		spec := testenv.Spec([]string{"/bin/sh", "-c", `echo "$HOME"`})
		spec.Process.Env = append([]string{"PATH=/bin"}, env...)
		spec.Process.User = specs.User{UID: uid, GID: uid}
		bundle := testenv.Bundle(t, spec)
		leaks.Dir(bundle)
		writeFile(t, filepath.Join(bundle, "rootfs", "etc", "passwd"), passwd)
		return strings.TrimSpace(c.ok("run", "--bundle", bundle, leaks.Track(testenv.UniqueID(t))))
	}
	for _, tc := range []struct {
		uid  uint32
		env  []string
		want string
	}{
		{0, nil, "/root"},
		{1000, nil, "/home/app"},
		{4242, nil, "/"},
		{1000, []string{"HOME=/given"}, "/given"},
	} {
		if got := home(tc.uid, tc.env...); got != tc.want {
			t.Errorf("uid %d env %v: HOME=%q, want %q", tc.uid, tc.env, got, tc.want)
		}
	}

	spec := sleeper()
	spec.Process.Env = []string{"PATH=/bin"}
	bundle := testenv.Bundle(t, spec)
	leaks.Dir(bundle)
	writeFile(t, filepath.Join(bundle, "rootfs", "etc", "passwd"), passwd)
	id := leaks.Track(testenv.UniqueID(t))
	c.ok("run", "--detach", "--bundle", bundle, id)
	t.Cleanup(func() { c.run("delete", "--force", id) })
	proc := filepath.Join(t.TempDir(), "process.json")
	pj, _ := json.Marshal(specs.Process{Args: []string{"/bin/sh", "-c", `echo "$HOME"`}, Cwd: "/",
		Env: []string{"PATH=/bin"}, User: specs.User{UID: 1000, GID: 1000}})
	if err := os.WriteFile(proc, pj, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(c.ok("exec", "--process", proc, id)); got != "/home/app" {
		t.Errorf("exec'd process as uid 1000: HOME=%q, want /home/app", got)
	}

	fifo := testenv.Spec([]string{"/bin/sh", "-c", `echo "$HOME"`})
	fifo.Process.Env = []string{"PATH=/bin"}
	fb := testenv.Bundle(t, fifo)
	leaks.Dir(fb)
	p := filepath.Join(fb, "rootfs", "etc", "passwd")
	os.Remove(p)
	if err := unix.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(c.ok("run", "--bundle", fb, leaks.Track(testenv.UniqueID(t)))); got != "/" {
		t.Errorf("FIFO at /etc/passwd: HOME=%q, want /", got)
	}
}
