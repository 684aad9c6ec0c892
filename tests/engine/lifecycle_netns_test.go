package engine

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"strings"
	"testing"

	"bulwark.dev/bulwark/tests/internal/clitest"
)

// netns is a network namespace the test makes (`ip netns add`) and deletes: a "host" of its own,
// so that nothing touches the machine's network.
type netns struct{ name string }

func newNetns(t *testing.T, prefix string) *netns {
	t.Helper()
	var b [4]byte
	rand.Read(b[:])
	n := &netns{name: prefix + "-" + hex.EncodeToString(b[:])}
	if out, err := exec.Command("ip", "netns", "add", n.name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", n.name).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v: %s", n.name, err, out)
		}
	})
	n.sh(t, "ip link set lo up")
	return n
}

// sh runs a shell command in the namespace and returns its standard output.
func (n *netns) sh(t *testing.T, cmd string) string {
	t.Helper()
	out, err := exec.Command("nsenter", "--net=/run/netns/"+n.name, "sh", "-c", cmd).Output()
	if err != nil {
		t.Fatalf("%s in %s: %v: %s", cmd, n.name, err, out)
	}
	return string(out)
}

// bulwark runs bulwark in the namespace (nsenter: `ip netns exec` would remount /sys).
func (n *netns) bulwark(t *testing.T, root string, args ...string) string {
	t.Helper()
	cmd := exec.Command("nsenter", append([]string{"--net=/run/netns/" + n.name, clitest.Bin, "--root", root}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bulwark %v in %s: %v\n%s%s", args, n.name, err, out, stderr.String())
	}
	return string(out)
}

// hostTraces is what a container's network leaves in a namespace: bridges, veths, NAT rules.
func (n *netns) hostTraces(t *testing.T) string {
	t.Helper()
	return strings.TrimSpace(n.sh(t, "ip -o link show type bridge; ip -o link show type veth; iptables-save -t nat | grep -e '-A' || true"))
}

// TestDetachedNetworkInClientNetns (issue 10): a detached run's network is set up in the network
// namespace of the client that ran it, not in that of the state root's supervisor, which a
// client elsewhere started: the client's port mapping serves in the client's namespace, nothing
// appears in the supervisor's, and a --rm container that exits by itself is detached in the
// client's namespace too (no rule left there). Both "hosts" are namespaces the test makes.
func TestDetachedNetworkInClientNetns(t *testing.T) {
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		t.Skip("CNI plugins missing (apt-get install containernetworking-plugins)")
	}
	f := newFixture(t)
	supHost, client := newNetns(t, "bwsup"), newNetns(t, "bwcli")
	// The supervisor starts in supHost, with a container that has no network.
	idle := f.name(t, "idle")
	supHost.bulwark(t, f.root, "run", "-d", "--name", idle, "busybox:1", "sleep", "600")
	if procs := supervisorProcs(t, f.root); len(procs["worker"]) != 1 {
		t.Fatalf("supervisor processes: %v", procs)
	}

	web := f.name(t, "web")
	client.bulwark(t, f.root, "run", "-d", "--name", web, "-p", "127.0.0.1:18080:80", "busybox:1", "sh", "-c",
		`mkdir -p /tmp/www && echo published > /tmp/www/index.html && exec httpd -f -p 80 -h /tmp/www`)
	fetch := "for i in $(seq 50); do busybox wget -qO- http://127.0.0.1:18080/ && exit; sleep 0.1; done; exit 1"
	if out := client.sh(t, fetch); out != "published\n" {
		t.Errorf("from the client's namespace: %q", out)
	}
	if traces := supHost.hostTraces(t); traces != "" {
		t.Errorf("the container's network is in the supervisor's namespace:\n%s", traces)
	}

	// Exits by itself: the supervisor removes it, detaching it in the client's namespace.
	once := f.name(t, "once")
	client.bulwark(t, f.root, "run", "-d", "--rm", "--name", once, "-p", "127.0.0.1:18081:80", "busybox:1", "sh", "-c", "sleep 1")
	waitFor(t, func() bool { return clitest.Run(t, f.root, "inspect", once).Code != 0 })
	if rules := client.sh(t, "iptables-save -t nat | grep -c 18081 || true"); strings.TrimSpace(rules) != "0" {
		t.Errorf("port mapping rules of the removed --rm container left in the client's namespace:\n%s", client.sh(t, "iptables-save -t nat"))
	}
	if traces := supHost.hostTraces(t); traces != "" {
		t.Errorf("the --rm container's network is in the supervisor's namespace:\n%s", traces)
	}

	client.bulwark(t, f.root, "rm", "-f", web)
	supHost.bulwark(t, f.root, "rm", "-f", idle)
	if veths := client.sh(t, "ip -o link show type veth"); veths != "" {
		t.Errorf("veths left in the client's namespace: %s", veths)
	}
	f.assertNothingLeft(t)
}
