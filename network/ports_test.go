package network

import (
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
)

// A host port held by a process of this namespace is refused naming the process (found from
// /proc/net and /proc/*/fd); -P's choice never lands on it.
func TestHostPortHolder(t *testing.T) {
	m := New(t.TempDir())
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	p := PortMapping{HostIP: "127.0.0.1", HostPort: port, ContainerPort: 80, Protocol: "tcp"}
	err = m.checkPorts([]PortMapping{p})
	if err == nil || !strings.Contains(err.Error(), "host process "+strconv.Itoa(os.Getpid())) {
		t.Errorf("a port this test listens on: %v", err)
	}
	p.HostIP = "0.0.0.0"
	if err := m.checkPorts([]PortMapping{p}); err == nil {
		t.Error("0.0.0.0 on a port held on loopback was not refused")
	}
	p.Protocol = "udp"
	if err := m.checkPorts([]PortMapping{p}); err != nil {
		t.Errorf("udp on a tcp listener's port: %v", err)
	}
	got, err := m.FreePorts([]PortMapping{{HostIP: "127.0.0.1", ContainerPort: 80, Protocol: "tcp"}, {HostIP: "127.0.0.1", ContainerPort: 81, Protocol: "tcp"}})
	if err != nil || len(got) != 2 || got[0].HostPort == got[1].HostPort || got[0].HostPort < 1024 || got[0].ContainerPort != 80 {
		t.Errorf("FreePorts: %+v %v", got, err)
	}
}

// /proc/net addresses are 32-bit words in host order.
func TestProcAddr(t *testing.T) {
	for in, want := range map[string]string{
		"0100007F:1F90":                         "127.0.0.1:8080",
		"00000000:0035":                         "0.0.0.0:53",
		"00000000000000000000000001000000:0050": "[::1]:80",
	} {
		a, p, ok := procAddr(in)
		if got := netip.AddrPortFrom(a, uint16(p)).String(); !ok || got != want {
			t.Errorf("%s: %s %v, want %s", in, got, ok, want)
		}
	}
}
