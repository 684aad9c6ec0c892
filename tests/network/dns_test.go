package network

import (
	"os"
	"strings"
	"testing"
	"time"
)

// resolvers lists the processes serving a network's resolver for the state root.
func resolvers(root string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) > 4 && args[2] == root && args[3] == "__resolver" {
			out = append(out, e.Name()+" "+strings.Join(args, " "))
		}
	}
	return out
}

// TestNamesOnNetwork: a container on a user-defined network reaches another by its name (and
// NAME.NETWORK) through the network's resolver, as Docker users expect; a container of another
// network of the tenant, or of another tenant's network of the same name, resolves nothing of
// it, not even by asking the first network's resolver directly; the resolver exits once the
// network has no container left.
func TestNamesOnNetwork(t *testing.T) {
	f := newFixture(t)
	h := newTestHost(t)
	pol := tenantsPolicy(t)
	t.Cleanup(func() {
		for _, p := range resolvers(f.root) {
			t.Errorf("resolver left running: %s", p)
		}
	})
	h.must(t, f.root, "network", "create", "web")
	h.must(t, f.root, "network", "create", "other")
	h.must(t, f.root, "network", "create", "web", "--tenant", "bob")
	srv := f.leaks.Track("named-srv")
	t.Cleanup(func() { h.bulwark(t, f.root, "rm", "-f", srv) })
	h.must(t, f.root, "run", "-d", "--policy-dir", pol, "--name", srv, "--network", "web", "busybox:1", "sh", "-c",
		`mkdir -p /tmp/www && echo by-name > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www`)
	web := h.inspect(t, f.root, "web")
	run := func(tenant, network, script string) (int, string, string) {
		r := h.bulwark(t, f.root, "run", "--rm", "--policy-dir", pol, "--tenant", tenant, "--network", network,
			"busybox:1", "sh", "-c", script)
		return r.Code, r.Stdout, r.Stderr
	}
	fetch := "for i in $(seq 50); do timeout 3 wget -qO- http://%s:8080/ && exit; sleep 0.1; done; exit 1"
	for _, name := range []string{srv, srv + ".web", strings.ToUpper(srv)} {
		if code, out, stderr := run("default", "web", strings.ReplaceAll(fetch, "%s", name)); code != 0 || out != "by-name\n" {
			t.Errorf("from the same network, by %s: exit %d %q %s", name, code, out, stderr)
		}
	}
	if code, out, _ := run("default", "web", "cat /etc/resolv.conf"); code != 0 || !strings.Contains(out, "nameserver "+web.Gateway+"\n") {
		t.Errorf("resolv.conf on the network: %q", out)
	}
	if code, out, stderr := run("default", "web", "timeout 5 nslookup "+srv+" "+web.Gateway+" || exit 1"); code != 0 || !strings.Contains(out, web.Containers[0].IP) {
		t.Errorf("control: nslookup from the same network: exit %d %q %s", code, out, stderr)
	}
	for _, c := range []struct{ what, tenant, network, script string }{
		{"another network of the tenant", "default", "other", "timeout 5 wget -qO- http://" + srv + ":8080/ || exit 1"},
		{"another network, asking the first network's resolver", "default", "other", "timeout 5 nslookup " + srv + " " + web.Gateway + " || exit 1"},
		{"another tenant's network of the same name", "bob", "web", "timeout 5 nslookup " + srv + " || exit 1"},
		{"another tenant, asking the first network's resolver", "bob", "web", "timeout 5 nslookup " + srv + " " + web.Gateway + " || exit 1"},
	} {
		if code, out, _ := run(c.tenant, c.network, c.script); code == 0 {
			t.Errorf("%s resolved %s: %q", c.what, srv, out)
		}
	}
	h.must(t, f.root, "rm", "-f", srv)
	deadline := time.Now().Add(30 * time.Second)
	for len(resolvers(f.root)) > 0 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	h.must(t, f.root, "network", "rm", "web", "other")
	h.must(t, f.root, "network", "rm", "web", "--tenant", "bob")
}
