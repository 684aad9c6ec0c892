package network

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"bulwark.dev/bulwark/tests/internal/clitest"
)

// exposingImage imports web:1, the busybox image whose config exposes 8080/tcp and 9090/tcp
// (built with umoci, a tool nobody here wrote), and signs it.
func exposingImage(t *testing.T, f *fixture) {
	t.Helper()
	if _, err := exec.LookPath("umoci"); err != nil {
		t.Skip("umoci missing (apt-get install umoci)")
	}
	dir := t.TempDir()
	layout := filepath.Join(dir, "layout")
	for _, args := range [][]string{
		{"init", "--layout", layout},
		{"new", "--image", layout + ":web"},
		{"raw", "add-layer", "--image", layout + ":web", busyboxTar(t, dir)},
		{"config", "--image", layout + ":web", "--config.exposedports", "8080/tcp", "--config.exposedports", "9090/tcp"},
	} {
		if out, err := exec.Command("umoci", args...).CombinedOutput(); err != nil {
			t.Fatalf("umoci %v: %v: %s", args, err, out)
		}
	}
	clitest.Must(t, f.root, "image", "import", layout, "--tag", "web:1")
	clitest.Must(t, f.root, "trust", "sign", "web:1")
}

// TestPublishAll: -P publishes every port the image exposes on a free host port of loopback
// (the kernel's ephemeral range), as docker run -P does; both answer the test host.
func TestPublishAll(t *testing.T) {
	f := newFixture(t)
	exposingImage(t, f)
	h := newTestHost(t)
	web := f.leaks.Track("publish-all")
	t.Cleanup(func() { h.bulwark(t, f.root, "rm", "-f", web) })
	h.must(t, f.root, "run", "-d", "-P", "--name", web, "web:1", "sh", "-c",
		`mkdir -p /tmp/www && echo exposed > /tmp/www/index.html && httpd -p 8080 -h /tmp/www && exec httpd -f -p 9090 -h /tmp/www`)
	n := h.inspect(t, f.root, "bridge")
	if len(n.Containers) != 1 {
		t.Fatalf("default network: %+v", n)
	}
	ports := n.Containers[0].Ports
	if len(ports) != 2 {
		t.Fatalf("ports of %s: %+v", web, ports)
	}
	low := 32768
	if f := strings.Fields(h.sh(t, "cat /proc/sys/net/ipv4/ip_local_port_range")); len(f) == 2 {
		low, _ = strconv.Atoi(f[0])
	}
	for i, want := range []int{8080, 9090} {
		p := ports[i]
		if p.ContainerPort != want || p.HostIP != "127.0.0.1" || p.HostPort < low {
			t.Errorf("port %d: %+v", want, p)
		}
		url := "http://127.0.0.1:" + strconv.Itoa(p.HostPort) + "/"
		if out := h.sh(t, "for i in $(seq 50); do busybox wget -qO- "+url+" && exit; sleep 0.1; done; exit 1"); out != "exposed\n" {
			t.Errorf("%s: %q", url, out)
		}
	}
}

// TestPublishHeldByHostProcess: a host port a process of the (test) host listens on is refused
// naming that process: portmap would take its traffic.
func TestPublishHeldByHostProcess(t *testing.T) {
	f := newFixture(t)
	h := newTestHost(t)
	srv := exec.Command("nsenter", "--net=/run/netns/"+h.name, "busybox", "httpd", "-f", "-p", "127.0.0.1:18080", "-h", t.TempDir())
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	h.sh(t, "for i in $(seq 50); do grep -q ':46A0 00000000:0000 0A' /proc/net/tcp && exit; sleep 0.1; done; exit 1")
	r := h.bulwark(t, f.root, "run", "--rm", "-p", "18080:80", "busybox:1", "true")
	if r.Code != 125 || !strings.Contains(r.Stderr, "host process "+strconv.Itoa(srv.Process.Pid)+" (busybox") {
		t.Errorf("-p 18080 held by pid %d: exit %d: %s", srv.Process.Pid, r.Code, r.Stderr)
	}
	if veths := h.sh(t, "ip -o link show type veth"); veths != "" {
		t.Errorf("veths left after the refusal: %s", veths)
	}
}
