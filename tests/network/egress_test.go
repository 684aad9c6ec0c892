package network

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// outside is a second namespace the test creates behind the test host (a veth pair,
// 198.51.100.0/24, and 169.254.169.254 routed there as a cloud's metadata service):
// destinations the test host routes containers' packets to, as the world beyond a real host.
// Servers there answer their own address and port.
func outside(t *testing.T, h *testHost) string {
	t.Helper()
	name := h.name + "-out"
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v: %s", name, err, out)
		}
	})
	h.sh(t, "ip link add nt-host type veth peer name nt-out netns "+name+
		" && ip addr add 198.51.100.1/24 dev nt-host && ip link set nt-host up")
	in := func(cmd string) {
		if out, err := exec.Command("nsenter", "--net=/run/netns/"+name, "sh", "-c", cmd).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", cmd, err, out)
		}
	}
	in("ip link set lo up && ip link set nt-out up && ip addr add 198.51.100.2/24 dev nt-out && ip addr add 198.51.100.3/24 dev nt-out" +
		" && ip addr add 169.254.169.254/32 dev nt-out")
	// A cloud's metadata service, routed to as on a real host.
	h.sh(t, "ip route add 169.254.169.254/32 via 198.51.100.2")
	www := t.TempDir()
	if err := os.WriteFile(filepath.Join(www, "index.html"), []byte("outside\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"198.51.100.2:8001", "198.51.100.2:8002", "198.51.100.3:8001", "169.254.169.254:80"} {
		srv := exec.Command("nsenter", "--net=/run/netns/"+name, "busybox", "httpd", "-f", "-p", addr, "-h", www)
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	}
	h.sh(t, "for i in $(seq 50); do busybox wget -qO- http://198.51.100.3:8001/ >/dev/null && busybox wget -qO- http://169.254.169.254/ >/dev/null && exit; sleep 0.1; done; exit 1")
	return name
}

// TestEgress: egress is decided by policy and enforced in the kernel. The tenant may reach
// tcp 198.51.100.0/24 (an allowlist); a run asking for one address and port reaches exactly that
// and nothing else listed or not; a run naming none gets the tenant's whole allowlist; network
// reaches its network's containers and nothing routed; none reaches not even those; asking for
// more than granted is refused with the reason, before anything is created. No rule is left
// once the containers are gone.
func TestEgress(t *testing.T) {
	f := newFixture(t)
	h := newTestHost(t)
	outside(t, h)
	pol := tenantsPolicy(t, `"egress": "allowlist"`, `"egress_allow": [{"cidr": "198.51.100.0/24", "protocol": "tcp"}]`)
	h.must(t, f.root, "network", "create", "web")
	peer := f.leaks.Track("egress-peer")
	t.Cleanup(func() { h.bulwark(t, f.root, "rm", "-f", peer) })
	h.must(t, f.root, "run", "-d", "--policy-dir", pol, "--name", peer, "--network", "web", "busybox:1", "sh", "-c",
		`mkdir -p /tmp/www && echo peer > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www`)
	peerURL := "http://" + h.inspect(t, f.root, "web").Containers[0].IP + ":8080/"
	// Reached or not, from a container with the given --egress values, each URL in turn.
	reaches := func(egress []string, urls ...string) map[string]bool {
		script := ""
		for _, u := range urls {
			script += "if timeout 3 wget -qO- " + u + " >/dev/null 2>&1; then echo " + u + "; fi; "
		}
		args := []string{"run", "--rm", "--policy-dir", pol, "--network", "web"}
		for _, e := range egress {
			args = append(args, "--egress", e)
		}
		out := h.must(t, f.root, append(args, "busybox:1", "sh", "-c", script)...)
		got := map[string]bool{}
		for _, u := range urls {
			got[u] = strings.Contains(out, u+"\n")
		}
		return got
	}
	a1, a2, b1 := "http://198.51.100.2:8001/", "http://198.51.100.2:8002/", "http://198.51.100.3:8001/"
	for _, c := range []struct {
		egress []string
		want   map[string]bool
	}{
		{[]string{"tcp:198.51.100.2:8001"}, map[string]bool{a1: true, a2: false, b1: false, peerURL: true}},
		{nil, map[string]bool{a1: true, a2: true, b1: true, peerURL: true}},
		{[]string{"network"}, map[string]bool{a1: false, b1: false, peerURL: true}},
		{[]string{"none"}, map[string]bool{a1: false, peerURL: false}},
	} {
		var urls []string
		for u := range c.want {
			urls = append(urls, u)
		}
		got := reaches(c.egress, urls...)
		for u, want := range c.want {
			if got[u] != want {
				t.Errorf("--egress %v: reached %s = %v, want %v", c.egress, u, got[u], want)
			}
		}
	}
	for _, c := range []struct{ egress, code string }{
		{"any", "EGRESS_NOT_GRANTED"},
		{"tcp:203.0.113.0/24:80", "EGRESS_DESTINATION_NOT_GRANTED"},
		{"udp:198.51.100.2:53", "EGRESS_DESTINATION_NOT_GRANTED"},
	} {
		r := h.bulwark(t, f.root, "run", "--rm", "--policy-dir", pol, "--network", "web", "--egress", c.egress, "busybox:1", "true")
		if r.Code != 125 || !strings.Contains(r.Stderr, c.code) {
			t.Errorf("--egress %s: exit %d, want 125 and %s: %s", c.egress, r.Code, c.code, r.Stderr)
		}
	}
	r := h.bulwark(t, f.root, "run", "--dry-run", "--policy-dir", pol, "--network", "web", "busybox:1", "true")
	if r.Code != 0 || !strings.Contains(r.Stderr, "egress: allowlist tcp:198.51.100.0/24") {
		t.Errorf("dry run does not show the tenant's egress: exit %d\n%s", r.Code, r.Stderr)
	}
	h.must(t, f.root, "rm", "-f", peer)
	if rules := h.sh(t, "iptables-save -t filter | grep -c 'BWE-\\|BULWARK-EGRESS' || true"); strings.TrimSpace(rules) != "0" {
		t.Errorf("egress rules left after the containers are gone:\n%s", h.sh(t, "iptables-save -t filter"))
	}
	// The bridge plugin's DEL leaves a stopped container's masquerade rule (it looks for the
	// addresses in the namespace, gone by then): detach removes it.
	if rules := h.sh(t, "iptables-save -t nat | grep -c MASQUERADE || true"); strings.TrimSpace(rules) != "0" {
		t.Errorf("masquerade rules left after the containers are gone:\n%s", h.sh(t, "iptables-save -t nat"))
	}
	h.must(t, f.root, "network", "rm", "web")
}
