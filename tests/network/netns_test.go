package network

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"bulwark.dev/bulwark/tests/internal/clitest"
)

// testHost is a network namespace the test creates (`ip netns add`) and deletes: the "host" the
// runtime's bridges, veths and NAT rules go into. Nothing touches the machine's own network.
type testHost struct {
	name string
}

func newTestHost(t *testing.T) *testHost {
	t.Helper()
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		t.Skip("CNI plugins missing (apt-get install containernetworking-plugins)")
	}
	var b [4]byte
	rand.Read(b[:])
	h := &testHost{name: "bwtest-" + hex.EncodeToString(b[:])}
	if out, err := exec.Command("ip", "netns", "add", h.name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", h.name).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v: %s", h.name, err, out)
		}
		if _, err := os.Stat(filepath.Join("/run/netns", h.name)); err == nil {
			t.Errorf("namespace %s left behind", h.name)
		}
	})
	h.sh(t, "ip link set lo up")
	return h
}

// sh runs a shell command in the test host's namespace and returns its standard output.
func (h *testHost) sh(t *testing.T, cmd string) string {
	t.Helper()
	c := exec.Command("nsenter", "--net=/run/netns/"+h.name, "sh", "-c", cmd)
	var stderr strings.Builder
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		t.Fatalf("%s: %v: %s%s", cmd, err, out, stderr.String())
	}
	return string(out)
}

// bulwark runs the bulwark binary in the test host's namespace (nsenter: `ip netns exec` would
// also remount /sys, hiding the cgroup hierarchies).
func (h *testHost) bulwark(t *testing.T, root string, args ...string) clitest.Result {
	t.Helper()
	cmd := exec.Command("nsenter", append([]string{"--net=/run/netns/" + h.name, clitest.Bin, "--root", root}, args...)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := clitest.Result{Stdout: stdout.String(), Stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return r
}

func (h *testHost) must(t *testing.T, root string, args ...string) string {
	t.Helper()
	r := h.bulwark(t, root, args...)
	if r.Code != 0 {
		t.Fatalf("bulwark %v: exit %d\nstdout: %s\nstderr: %s", args, r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

type endpoint struct {
	Container string
	IP        string
	Ports     []struct {
		HostIP                  string
		HostPort, ContainerPort int
	}
}

type networkDef struct {
	Name, Subnet, Gateway, Bridge string
	Containers                    []endpoint
}

func (h *testHost) inspect(t *testing.T, root, name string, extra ...string) networkDef {
	t.Helper()
	var ns []networkDef
	if err := json.Unmarshal([]byte(h.must(t, root, append([]string{"network", "inspect", name}, extra...)...)), &ns); err != nil || len(ns) != 1 {
		t.Fatalf("network inspect %s: %v %v", name, ns, err)
	}
	return ns[0]
}

// TestNetworkServeByAddress: a user-defined network of the tenant; a server on it answers the
// (test) host and another container on the same network; another tenant does not see the
// network; after rm and network rm nothing is left (veth, lease, attachment, bridge).
func TestNetworkServeByAddress(t *testing.T) {
	f := newFixture(t)
	h := newTestHost(t)
	h.must(t, f.root, "network", "create", "web")
	if ls := h.must(t, f.root, "network", "ls"); !strings.Contains(ls, "web") || !strings.Contains(ls, "10.209.0.0/24") {
		t.Errorf("network ls:\n%s", ls)
	}
	if r := h.bulwark(t, f.root, "network", "inspect", "web", "--tenant", "other"); r.Code == 0 {
		t.Errorf("another tenant inspects the network: %s", r.Stdout)
	}
	srv := f.leaks.Track("srv")
	h.must(t, f.root, "run", "-d", "--name", srv, "--network", "web", "busybox:1", "sh", "-c",
		`mkdir -p /tmp/www && echo on-the-network > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www`)
	n := h.inspect(t, f.root, "web")
	if len(n.Containers) != 1 || n.Containers[0].Container != srv || !strings.HasPrefix(n.Containers[0].IP, "10.209.0.") {
		t.Fatalf("network web: %+v", n)
	}
	url := "http://" + n.Containers[0].IP + ":8080/"
	fetch := "for i in $(seq 50); do busybox wget -qO- " + url + " && exit; sleep 0.1; done; exit 1"
	if out := h.sh(t, fetch); out != "on-the-network\n" {
		t.Errorf("from the test host: %q", out)
	}
	if out := h.must(t, f.root, "run", "--rm", "--network", "web", "busybox:1", "wget", "-qO-", url); out != "on-the-network\n" {
		t.Errorf("from a container on the same network: %q", out)
	}
	if r := h.bulwark(t, f.root, "network", "rm", "web"); r.Code == 0 || !strings.Contains(r.Stderr, srv) {
		t.Errorf("network rm with an attached container: exit %d, %s", r.Code, r.Stderr)
	}
	h.must(t, f.root, "rm", "-f", srv)
	if veths := h.sh(t, "ip -o link show type veth"); veths != "" {
		t.Errorf("veths left after rm: %s", veths)
	}
	leases, _ := filepath.Glob(filepath.Join(f.root, "networks", "default", "ipam", "web", "*", "10.*"))
	atts, _ := os.ReadDir(filepath.Join(f.root, "networks", "default", "attachments"))
	if len(leases) != 0 || len(atts) != 0 {
		t.Errorf("after rm: leases %v, attachments %v", leases, atts)
	}
	h.must(t, f.root, "network", "rm", "web")
	if links := h.sh(t, "ip -o link show type bridge"); links != "" {
		t.Errorf("bridge left after network rm: %s", links)
	}
	if ls := h.must(t, f.root, "network", "ls"); strings.Contains(ls, "web") {
		t.Errorf("network ls after rm:\n%s", ls)
	}
}

// TestNetworkHostRefused: --network host is refused with the reason; an unknown network is
// refused before anything is created.
func TestNetworkHostRefused(t *testing.T) {
	f := newFixture(t)
	r := clitest.Run(t, f.root, "run", "--rm", "--network", "host", "busybox:1", "true")
	if r.Code != 125 || !strings.Contains(r.Stderr, "never shares the host's network namespace") {
		t.Errorf("--network host: exit %d: %s", r.Code, r.Stderr)
	}
	r = clitest.Run(t, f.root, "run", "--rm", "--network", "nosuch", "busybox:1", "true")
	if r.Code != 125 || !strings.Contains(r.Stderr, "no such network") {
		t.Errorf("--network nosuch: exit %d: %s", r.Code, r.Stderr)
	}
}

// TestPublish: `run -p 8080:80` serves on the (test) host's loopback through the tenant's
// default network, as docker run -p does; policy refuses every address and privileged port it
// does not grant (0.0.0.0 and ports below 1024 by default), naming the reason; a host port
// already published is refused naming its holder; rm leaves no port mapping behind.
func TestPublish(t *testing.T) {
	f := newFixture(t)
	h := newTestHost(t)
	web := f.leaks.Track("web")
	h.must(t, f.root, "run", "-d", "--name", web, "-p", "8080:80", "busybox:1", "sh", "-c",
		`mkdir -p /tmp/www && echo published > /tmp/www/index.html && exec httpd -f -p 80 -h /tmp/www`)
	fetch := "for i in $(seq 50); do busybox wget -qO- http://127.0.0.1:8080/ && exit; sleep 0.1; done; exit 1"
	if out := h.sh(t, fetch); out != "published\n" {
		t.Errorf("from the test host's loopback: %q", out)
	}
	if n := h.inspect(t, f.root, "bridge"); len(n.Containers) != 1 || n.Containers[0].Container != web {
		t.Errorf("default network: %+v", n)
	}
	for _, c := range []struct{ publish, code string }{
		{"0.0.0.0:8081:80", "PUBLISH_ADDRESS_NOT_GRANTED"},
		{"127.0.0.1:80:80", "PUBLISH_PORT_NOT_GRANTED"},
	} {
		r := h.bulwark(t, f.root, "run", "--rm", "-p", c.publish, "busybox:1", "true")
		if r.Code != 125 || !strings.Contains(r.Stderr, c.code) {
			t.Errorf("-p %s: exit %d, want 125 and %s: %s", c.publish, r.Code, c.code, r.Stderr)
		}
	}
	r := h.bulwark(t, f.root, "run", "--rm", "-p", "8080:81", "busybox:1", "true")
	if r.Code != 125 || !strings.Contains(r.Stderr, "held by container "+web) {
		t.Errorf("a second -p 8080: exit %d: %s", r.Code, r.Stderr)
	}
	h.must(t, f.root, "rm", "-f", web)
	if rules := h.sh(t, "iptables-save -t nat | grep -c 8080 || true"); strings.TrimSpace(rules) != "0" {
		t.Errorf("port mapping rules left after rm: %s", h.sh(t, "iptables-save -t nat"))
	}
	if veths := h.sh(t, "ip -o link show type veth"); veths != "" {
		t.Errorf("veths left after rm: %s", veths)
	}
}

// TestIsolation: a container reaches a server on its own network, but not from another network
// of its tenant, nor from another tenant's network, nor does it reach a service of the (test)
// host through its gateway, nor the metadata address 169.254.169.254 (routed beyond the host,
// where egress any reaches). Without the isolation rules the host routes between the bridges and
// answers on the gateway. After the networks are removed no rule is left.
func TestIsolation(t *testing.T) {
	f := newFixture(t)
	h := newTestHost(t)
	pol := tenantsPolicy(t)
	h.must(t, f.root, "network", "create", "web")
	h.must(t, f.root, "network", "create", "other")
	h.must(t, f.root, "network", "create", "web", "--tenant", "bob")
	srv := f.leaks.Track("isolated-srv")
	h.must(t, f.root, "run", "-d", "--policy-dir", pol, "--name", srv, "--network", "web", "busybox:1", "sh", "-c",
		`mkdir -p /tmp/www && echo reached > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www`)
	n := h.inspect(t, f.root, "web")
	if len(n.Containers) != 1 {
		t.Fatalf("network web: %+v", n)
	}
	url := "http://" + n.Containers[0].IP + ":8080/"
	// A service of the test host, on every address of it (the gateway's included).
	www := t.TempDir()
	if err := os.WriteFile(filepath.Join(www, "index.html"), []byte("host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hostSrv := exec.Command("nsenter", "--net=/run/netns/"+h.name, "busybox", "httpd", "-f", "-p", "9090", "-h", www)
	if err := hostSrv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hostSrv.Process.Kill(); hostSrv.Wait() })
	if out := h.sh(t, "for i in $(seq 50); do busybox wget -qO- http://127.0.0.1:9090/ && exit; sleep 0.1; done; exit 1"); out != "host\n" {
		t.Fatalf("control: the test host's service: %q", out)
	}
	fetch := func(tenant, network, url string) clitest.Result {
		return h.bulwark(t, f.root, "run", "--rm", "--policy-dir", pol, "--tenant", tenant, "--network", network,
			"busybox:1", "sh", "-c", "timeout 3 wget -qO- "+url+" || exit 1")
		// wget -T segfaults in busybox 1.35; timeout runs below sh (|| keeps sh from exec'ing
		// it): as pid 1 it could not signal itself.
	}
	if r := fetch("default", "web", url); r.Code != 0 || r.Stdout != "reached\n" {
		t.Errorf("control: same network: exit %d %q %s", r.Code, r.Stdout, r.Stderr)
	}
	// The world beyond the host is reached (egress any, the default), its metadata address not.
	outside(t, h)
	if r := fetch("default", "web", "http://198.51.100.3:8001/"); r.Code != 0 || r.Stdout != "outside\n" {
		t.Errorf("control: a routed destination: exit %d %q %s", r.Code, r.Stdout, r.Stderr)
	}
	for _, c := range []struct{ what, tenant, network, url string }{
		{"another network of the tenant", "default", "other", url},
		{"another tenant's network", "bob", "web", url},
		{"the host through the gateway", "default", "web", "http://" + n.Gateway + ":9090/"},
		{"the metadata address", "default", "web", "http://169.254.169.254/"},
	} {
		if r := fetch(c.tenant, c.network, c.url); r.Code == 0 {
			t.Errorf("%s reached %s: %q", c.what, c.url, r.Stdout)
		}
	}
	h.must(t, f.root, "rm", "-f", srv)
	h.must(t, f.root, "network", "rm", "web", "other")
	h.must(t, f.root, "network", "rm", "web", "--tenant", "bob")
	if rules := h.sh(t, "iptables-save -t filter | grep -c BULWARK || true"); strings.TrimSpace(rules) != "0" {
		t.Errorf("isolation rules left after the networks are removed:\n%s", h.sh(t, "iptables-save -t filter"))
	}
}

// tenantsPolicy is a policy directory whose data knows the tenants default and bob; extra is
// merged into each tenant's entry (JSON members, e.g. `"egress": "network"`).
func tenantsPolicy(t *testing.T, extra ...string) string {
	t.Helper()
	pol := t.TempDir()
	tenant := `{"max_memory": 1073741824, "max_pids": 1024`
	for _, x := range extra {
		tenant += ", " + x
	}
	tenant += "}"
	data := `{"bulwark": {"tenants": {"default": ` + tenant + `, "bob": ` + tenant + `}}}`
	if err := os.WriteFile(filepath.Join(pol, "data.json"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return pol
}
