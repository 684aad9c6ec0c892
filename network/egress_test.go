package network

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// --egress is one mode or allowlist entries; anything else is refused, not guessed.
func TestParseEgress(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want string
	}{
		{[]string{"none"}, "none"},
		{[]string{"network"}, "network"},
		{[]string{"any"}, "any"},
		{[]string{"10.1.2.3"}, "allowlist any:10.1.2.3/32"},
		{[]string{"10.1.2.3:8080", "udp:10.0.0.0/8:53", "tcp:192.0.2.0/24:8000-8999", "any:10.9.0.0/16"},
			"allowlist tcp:10.1.2.3/32:8080,udp:10.0.0.0/8:53,tcp:192.0.2.0/24:8000-8999,any:10.9.0.0/16"},
		{[]string{"10.1.2.3/16"}, "allowlist any:10.1.0.0/16"},
	} {
		e, err := ParseEgress(c.in)
		if err != nil || e.String() != c.want {
			t.Errorf("%v: %q, %v; want %q", c.in, e.String(), err, c.want)
		}
		if again, err := ParseEgress(strings.Fields(strings.ReplaceAll(strings.TrimPrefix(e.String(), "allowlist "), ",", " "))); err != nil || !reflect.DeepEqual(again, e) {
			t.Errorf("%v does not read back: %+v %v", c.in, again, err)
		}
	}
	for _, bad := range [][]string{nil, {"none", "any"}, {"none", "10.0.0.1"}, {"all"}, {"::1"}, {"any:10.0.0.1:80"},
		{"10.0.0.1:0"}, {"10.0.0.1:90-80"}, {"sctp:10.0.0.1:80"}, {"10.0.0.1:80:90"}, {"host"}} {
		if e, err := ParseEgress(bad); err == nil {
			t.Errorf("%v accepted: %+v", bad, e)
		}
	}
}

// The chain of a container: replies always; its network (peers, resolver) unless none; each
// allowlisted destination; then a drop.
func TestEgressRules(t *testing.T) {
	n := &Network{Bridge: "bwx", Gateway: netip.MustParseAddr("10.209.0.1")}
	e, _ := ParseEgress([]string{"10.1.2.3:8080", "any:192.0.2.0/24"})
	var got []string
	for _, r := range egressRules(n, e) {
		got = append(got, strings.Join(r, " "))
	}
	want := []string{
		"-m conntrack --ctstate ESTABLISHED,RELATED -j RETURN",
		"-o bwx -j RETURN",
		"-d 10.209.0.1 -p udp --dport 53 -j RETURN",
		"-d 10.209.0.1 -p tcp --dport 53 -j RETURN",
		"-d 10.1.2.3/32 -p tcp --dport 8080:8080 -j RETURN",
		"-d 192.0.2.0/24 -j RETURN",
		"-j DROP",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("allowlist:\n%s", strings.Join(got, "\n"))
	}
	if rs := egressRules(n, Egress{Mode: EgressNone}); len(rs) != 2 || rs[1][1] != "DROP" {
		t.Errorf("none: %v", rs)
	}
}

// The chain CNI's bridge plugin (Debian's 1.1.1) made for a container's masquerade rule, as seen
// in iptables, is the one detach removes.
func TestMasqChain(t *testing.T) {
	if got := masqChain("bulwark-default-web", "68891117cbdf"); got != "CNI-2314b29f823212d960eec4e1" {
		t.Errorf("masqChain = %s", got)
	}
}

// A lease file whose container has no attachment is swept; host-local's own files and the
// leases of attached containers stay.
func TestSweepLeases(t *testing.T) {
	m := New(t.TempDir())
	dir := filepath.Join(m.tenantDir("a"), "ipam", "web", "bulwark-a-web")
	files := map[string]string{"10.209.0.2": "live\r\neth0", "10.209.0.3": "gone\r\neth0", "last_reserved_ip.0": "10.209.0.3", "lock": ""}
	for name, content := range files {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, err := m.sweepLeases([]string{"a"}, map[string]bool{"a/live": true})
	if err != nil || !reflect.DeepEqual(got, []string{"a/10.209.0.3"}) {
		t.Errorf("swept %v, %v", got, err)
	}
	for name := range files {
		_, err := os.Stat(filepath.Join(dir, name))
		if (name == "10.209.0.3") != os.IsNotExist(err) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
