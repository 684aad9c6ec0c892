package network

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"bulwark.dev/bulwark/errdefs"
)

// Networks are per tenant: each gets its own /24 and bridge, names are checked, and another
// tenant's network is answered as missing.
func TestDefinitions(t *testing.T) {
	m := New(t.TempDir())
	a, err := m.Create("a", "web", netip.Prefix{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Create("b", "web", netip.Prefix{})
	if err != nil {
		t.Fatal(err)
	}
	if a.Subnet == b.Subnet || a.Bridge == b.Bridge || !Pool.Contains(a.Subnet.Addr()) || a.Gateway != netip.MustParseAddr("10.209.0.1") {
		t.Errorf("a %+v b %+v", a, b)
	}
	if _, err := m.Create("a", "web", netip.Prefix{}); !errors.Is(err, ErrExist) {
		t.Errorf("second create: %v", err)
	}
	for _, bad := range []string{"none", "host", "../x", "UPPER", ""} {
		if _, err := m.Create("a", bad, netip.Prefix{}); err == nil {
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
	c, err := m.Create("c", "x", netip.Prefix{})
	if err != nil || c.Subnet != a.Subnet {
		t.Errorf("the freed /24 is not reused: %+v %v", c, err)
	}
}

// A subnet asked for is a free /24 of the pool, else refused as an invalid argument: a network
// outside the pool would route addresses the host reaches elsewhere.
func TestCreateSubnet(t *testing.T) {
	m := New(t.TempDir())
	want := netip.MustParsePrefix("10.209.7.0/24")
	n, err := m.Create("a", "web", want)
	if err != nil || n.Subnet != want || n.Gateway != netip.MustParseAddr("10.209.7.1") {
		t.Fatalf("create on %s: %+v %v", want, n, err)
	}
	for _, bad := range []string{"10.209.7.0/24", "192.168.1.0/24", "10.209.8.0/25", "10.209.0.0/16", "10.209.9.128/24"} {
		if _, err := m.Create("b", "x", netip.MustParsePrefix(bad)); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("subnet %s: %v", bad, err)
		}
	}
	if n, err := m.Create("b", "y", netip.Prefix{}); err != nil || n.Subnet != netip.MustParsePrefix("10.209.0.0/24") {
		t.Errorf("next free after an asked one: %+v %v", n, err)
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
