package setup

import (
	"bytes"
	"encoding/binary"
	"os"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestProtocolOrder(t *testing.T) {
	cases := []struct {
		seq []Kind
		ok  bool
	}{
		{[]Kind{KindConfig, KindReady}, true},
		{[]Kind{KindConfig, KindConsole, KindReady}, true},
		{[]Kind{KindConfig, KindError}, true},
		{[]Kind{KindConfig, KindConsole, KindError}, true},
		{[]Kind{KindError}, true}, // the child failed before it could read its config
		{[]Kind{KindReady}, false},
		{[]Kind{KindConsole}, false},
		{[]Kind{KindConfig, KindConfig}, false},
		{[]Kind{KindConfig, KindReady, KindReady}, false},
		{[]Kind{KindConfig, KindReady, KindError}, false},
		{[]Kind{KindConfig, KindError, KindReady}, false},
		{[]Kind{KindConfig, KindReady, KindConsole}, false},
		{[]Kind{KindConfig, KindConsole, KindConsole}, false},
		{[]Kind{"bogus"}, false},
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
	pf, cf, err := SocketPair()
	if err != nil {
		t.Fatal(err)
	}
	parent, child := NewChannel(pf), NewChannel(cf)
	defer parent.Close()
	defer child.Close()
	f, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	big := strings.Repeat("x", 1<<20) // larger than a socket buffer: must arrive whole
	// The seccomp programs travel raw, in order; one is larger than a socket buffer too.
	progs := []SeccompBlob{{Digest: "a", BPF: []byte{1, 2, 3}}, {Digest: "e", BPF: nil}, {Digest: "b", BPF: bytes.Repeat([]byte{7}, 300<<10)}}
	sent := make(chan error, 1)
	go func() {
		sent <- parent.Send(&Message{Kind: KindConfig, Config: &Config{ID: big, RootfsFD: 0, FifoFD: -1, Process: ProcessPlan{Seccomp: progs}}, FDs: []int{int(f.Fd())}})
	}()
	m, err := child.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if m.Kind != KindConfig || m.Config.ID != big || len(m.FDs) != 1 {
		t.Fatalf("got kind %s, id len %d, %d fds", m.Kind, len(m.Config.ID), len(m.FDs))
	}
	if got := m.Config.Process.Seccomp; len(got) != len(progs) {
		t.Fatalf("got %d seccomp programs, want %d", len(got), len(progs))
	}
	for i, p := range m.Config.Process.Seccomp {
		if p.Digest != progs[i].Digest || !bytes.Equal(p.BPF, progs[i].BPF) {
			t.Errorf("seccomp program %d: digest %s, %d bytes; want %s, %d bytes", i, p.Digest, len(p.BPF), progs[i].Digest, len(progs[i].BPF))
		}
	}
	var st unix.Stat_t
	if err := unix.Fstat(m.FDs[0], &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR {
		t.Fatalf("received descriptor is not /dev/null: %v", err)
	}
	CloseAll(m.FDs)
	if err := child.Send(&Message{Kind: KindConfig}); err == nil {
		t.Fatal("child could send a second config")
	}
	if err := child.Send(&Message{Kind: KindReady}); err != nil {
		t.Fatal(err)
	}
	if m, err := parent.Recv(); err != nil || m.Kind != KindReady {
		t.Fatalf("parent got %v, %v", m, err)
	}
	if err := child.Send(&Message{Kind: KindError, Error: &InitError{Layer: "x"}}); err == nil {
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

// A body announcing a string, a list or a seccomp program longer than the rest of its frame is
// refused before anything is allocated for it, and so is one with bytes left over.
func TestChannelRefusesOversizeLengths(t *testing.T) {
	bpf := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	good := encodeMessage(&Message{Kind: KindConfig, Config: &Config{ID: "x", Process: ProcessPlan{
		Seccomp: []SeccompBlob{{Digest: "a", BPF: bpf}}}}})
	if _, err := decodeMessage(good); err != nil {
		t.Fatalf("control: %v", err)
	}
	var list encoder // a ready message whose step list claims 2^40 entries
	list.str(string(KindReady))
	list.str("")
	list.uint(1 << 40)
	at := bytes.Index(good, bpf) - 1 // the program's length byte
	program := append(append(slices.Clip(good[:at]), binary.AppendUvarint(nil, maxMessage)...), good[at+1:]...)
	cases := map[string][]byte{
		"string":   binary.AppendUvarint(nil, maxMessage+1),
		"list":     list.b,
		"program":  program,
		"trailing": append(slices.Clip(good), 0),
		"short":    good[:len(good)-1],
	}
	for name, body := range cases {
		pf, cf, err := SocketPair()
		if err != nil {
			t.Fatal(err)
		}
		child := NewChannel(cf)
		frame := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
		if _, err := pf.Write(append(frame, body...)); err != nil {
			t.Fatal(err)
		}
		if _, err := child.Recv(); err == nil || !strings.Contains(err.Error(), "decode message") {
			t.Errorf("%s: recv = %v, want the body refused", name, err)
		}
		pf.Close()
		child.Close()
	}
}
