package console

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestConsoleProxyReceivesMaster: the proxy accepts one connection on its socket and takes the
// descriptor sent with SCM_RIGHTS, as the sandbox sends the pty master.
func TestConsoleProxyReceivesMaster(t *testing.T) {
	p, err := NewProxy(true)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: p.Path(), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := conn.WriteMsgUnix([]byte("/dev/pts/7"), unix.UnixRights(int(f.Fd())), nil); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	select {
	case m := <-p.Socket.master:
		defer m.Close()
		if m.Name() != "/dev/pts/7" {
			t.Errorf("received %q", m.Name())
		}
		var st1, st2 unix.Stat_t
		unix.Fstat(int(m.Fd()), &st1)
		unix.Fstat(int(f.Fd()), &st2)
		if st1.Ino != st2.Ino || st1.Dev != st2.Dev {
			t.Error("received descriptor is not the one sent")
		}
	case err := <-p.Socket.errc:
		t.Fatal(err)
	case <-time.After(5 * time.Second):
		t.Fatal("nothing received")
	}
	dir := filepath.Dir(p.Path())
	if err := p.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("socket dir left: %v", err)
	}
}

func TestConsoleProxyRejectsMessageWithoutFd(t *testing.T) {
	p, err := NewProxy(true)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: p.Path(), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("no descriptor"))
	conn.Close()
	if err := p.Attach(); err == nil {
		t.Fatal("attach succeeded without a descriptor")
	}
}
