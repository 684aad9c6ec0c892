package activation

import (
	"net"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestPassed(t *testing.T) {
	for _, c := range []struct {
		name  string
		env   map[string]string
		n     int
		names []string
		err   string
	}{
		{name: "none", env: map[string]string{}},
		{name: "fds without pid", env: map[string]string{EnvFDs: "1"}},
		{name: "another process's", env: map[string]string{EnvPID: "99", EnvFDs: "2"}},
		{name: "one unnamed", env: map[string]string{EnvPID: "42", EnvFDs: "1"}, n: 1, names: []string{""}},
		{name: "named", env: map[string]string{EnvPID: "42", EnvFDs: "2", EnvNames: "bulwarkd.socket:metrics"}, n: 2,
			names: []string{"bulwarkd.socket", "metrics"}},
		{name: "zero", env: map[string]string{EnvPID: "42", EnvFDs: "0"}, names: []string{}},
		{name: "bad pid", env: map[string]string{EnvPID: "x", EnvFDs: "1"}, err: "not a process id"},
		{name: "bad count", env: map[string]string{EnvPID: "42", EnvFDs: "-1"}, err: "want 0..64"},
		{name: "too many", env: map[string]string{EnvPID: "42", EnvFDs: "65"}, err: "want 0..64"},
		{name: "names mismatch", env: map[string]string{EnvPID: "42", EnvFDs: "2", EnvNames: "a"}, err: "names 1 descriptors"},
	} {
		t.Run(c.name, func(t *testing.T) {
			n, names, err := Passed(42, func(k string) string { return c.env[k] })
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || n != c.n || !slices.Equal(names, c.names) {
				t.Fatalf("got %d %q %v, want %d %q", n, names, err, c.n, c.names)
			}
		})
	}
}

func TestNotify(t *testing.T) {
	p := t.TempDir() + "/notify"
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: p, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Setenv(EnvNotify, p)
	n := NewNotifier()
	if os.Getenv(EnvNotify) != "" {
		t.Errorf("%s left in the environment", EnvNotify)
	}
	if err := n.Notify("READY=1"); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 64)
	k, err := c.Read(b)
	if err != nil || string(b[:k]) != "READY=1" {
		t.Fatalf("got %q %v", b[:k], err)
	}
	if err := (Notifier{}).Notify("READY=1"); err != nil {
		t.Errorf("without a manager: %v", err)
	}
}
