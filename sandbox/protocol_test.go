package sandbox

import (
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestProtocolOrder(t *testing.T) {
	cases := []struct {
		seq []msgKind
		ok  bool
	}{
		{[]msgKind{kindConfig, kindReady}, true},
		{[]msgKind{kindConfig, kindConsole, kindReady}, true},
		{[]msgKind{kindConfig, kindError}, true},
		{[]msgKind{kindConfig, kindConsole, kindError}, true},
		{[]msgKind{kindError}, true}, // the child failed before it could read its config
		{[]msgKind{kindReady}, false},
		{[]msgKind{kindConsole}, false},
		{[]msgKind{kindConfig, kindConfig}, false},
		{[]msgKind{kindConfig, kindReady, kindReady}, false},
		{[]msgKind{kindConfig, kindReady, kindError}, false},
		{[]msgKind{kindConfig, kindError, kindReady}, false},
		{[]msgKind{kindConfig, kindReady, kindConsole}, false},
		{[]msgKind{kindConfig, kindConsole, kindConsole}, false},
		{[]msgKind{"bogus"}, false},
	}
	for _, c := range cases {
		var s sequence
		var err error
		for _, k := range c.seq {
			if err = s.next(k); err != nil {
				break
			}
		}
		if (err == nil) != c.ok {
			t.Errorf("%v: err %v, want ok=%v", c.seq, err, c.ok)
		}
	}
}

// TestChannelRoundTrip sends a config with descriptors and a large body, then a console and a
// ready message, and checks both sides enforce the order.
func TestChannelRoundTrip(t *testing.T) {
	pf, cf, err := socketPair()
	if err != nil {
		t.Fatal(err)
	}
	parent, child := newChannel(pf), newChannel(cf)
	defer parent.close()
	defer child.close()
	f, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	big := strings.Repeat("x", 1<<20) // larger than a socket buffer: must arrive whole
	go func() {
		parent.send(&message{Kind: kindConfig, Config: &initConfig{ID: big, RootfsFD: 0, FifoFD: -1}, fds: []int{int(f.Fd())}})
	}()
	m, err := child.recv()
	if err != nil {
		t.Fatal(err)
	}
	if m.Kind != kindConfig || m.Config.ID != big || len(m.fds) != 1 {
		t.Fatalf("got kind %s, id len %d, %d fds", m.Kind, len(m.Config.ID), len(m.fds))
	}
	var st unix.Stat_t
	if err := unix.Fstat(m.fds[0], &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR {
		t.Fatalf("received descriptor is not /dev/null: %v", err)
	}
	closeAll(m.fds)
	if err := child.send(&message{Kind: kindConfig}); err == nil {
		t.Fatal("child could send a second config")
	}
	if err := child.send(&message{Kind: kindReady}); err != nil {
		t.Fatal(err)
	}
	if m, err := parent.recv(); err != nil || m.Kind != kindReady {
		t.Fatalf("parent got %v, %v", m, err)
	}
	if err := child.send(&message{Kind: kindError, Error: &InitError{Layer: "x"}}); err == nil {
		t.Fatal("child could send an error after ready")
	}
}

func TestInitErrorUnwrap(t *testing.T) {
	e := stepError("mounts", "pivot_root", "/", &pathError{op: "pivot", path: "/", err: unix.EINVAL})
	if e.Errno != unix.EINVAL {
		t.Fatalf("errno %v", e.Errno)
	}
	for _, want := range []string{"layer mounts", "step pivot_root", "path /", "errno 22"} {
		if !strings.Contains(e.Error(), want) {
			t.Errorf("%q lacks %q", e.Error(), want)
		}
	}
}
