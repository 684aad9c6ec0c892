package network

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// Networks are per tenant: each gets its own /24 and bridge, names are checked, and another
// tenant's network is answered as missing.
func TestDefinitions(t *testing.T) {
	m := New(t.TempDir())
	a, err := m.Create("a", "web")
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Create("b", "web")
	if err != nil {
		t.Fatal(err)
	}
	if a.Subnet == b.Subnet || a.Bridge == b.Bridge || !Pool.Contains(a.Subnet.Addr()) || a.Gateway != netip.MustParseAddr("10.209.0.1") {
		t.Errorf("a %+v b %+v", a, b)
	}
	if _, err := m.Create("a", "web"); !errors.Is(err, ErrExist) {
		t.Errorf("second create: %v", err)
	}
	for _, bad := range []string{"none", "host", "../x", "UPPER", ""} {
		if _, err := m.Create("a", bad); err == nil {
			t.Errorf("name %q accepted", bad)
		}
	}
	if _, err := m.Inspect("c", "web"); !errors.Is(err, ErrNotFound) {
		t.Errorf("another tenant's network: %v", err)
	}
	ls, err := m.List("a")
	if err != nil || len(ls) != 1 || ls[0].Name != "web" {
		t.Errorf("list %v %v", ls, err)
	}
	if err := m.Remove("a", "web"); err != nil {
		t.Fatal(err)
	}
	c, err := m.Create("c", "x")
	if err != nil || c.Subnet != a.Subnet {
		t.Errorf("the freed /24 is not reused: %+v %v", c, err)
	}
}

// A host port published by one container is refused to the next, naming the holder.
func TestPortConflict(t *testing.T) {
	m := New(t.TempDir())
	p := PortMapping{HostIP: "127.0.0.1", HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}
	if err := writeJSON(m.attachPath("a", "web1"), &Attachment{Container: "web1", Network: "bridge", Ports: []PortMapping{p}}); err != nil {
		t.Fatal(err)
	}
	err := m.checkPorts([]PortMapping{{HostPort: 8080, ContainerPort: 81, Protocol: "tcp"}})
	if err == nil || !strings.Contains(err.Error(), "web1") {
		t.Errorf("conflict: %v", err)
	}
	if err := m.checkPorts([]PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "udp"}}); err != nil {
		t.Errorf("udp on the same port: %v", err)
	}
}
