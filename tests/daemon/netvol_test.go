package daemon

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"bulwark.dev/bulwark/tests/internal/clitest"
	"bulwark.dev/bulwark/tests/internal/testenv"
)

// Networks and volumes through bulwarkd, with the docker CLI and the Python SDK. Tests with
// networks run the daemon in a network namespace the test makes (the "host" of the tenants'
// bridges, veths and NAT rules; the state root's supervisor and the networks' resolvers start
// from the daemon, so they run there too) and send packets only to 127.0.0.0/8 of that namespace
// and to the containers' addresses inside it.

// testNetns is a network namespace the test adds and deletes, with loopback up.
func testNetns(t *testing.T) string {
	t.Helper()
	testenv.RequireRoot(t)
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		t.Skip("CNI plugins missing (apt-get install containernetworking-plugins)")
	}
	var b [4]byte
	rand.Read(b[:])
	name := "bwd-" + hex.EncodeToString(b[:])
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v: %s", name, err, out)
		}
	})
	ns := "/run/netns/" + name
	nsh(t, ns, "ip link set lo up")
	return ns
}

// nsh runs a shell command in network namespace ns and returns its standard output.
func nsh(t *testing.T, ns, cmd string) string {
	t.Helper()
	c := exec.Command("nsenter", "--net="+ns, "sh", "-c", cmd)
	var stderr strings.Builder
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		t.Fatalf("%s: %v: %s%s", cmd, err, out, stderr.String())
	}
	return string(out)
}

// netbox imports and signs netbox:1, busybox with the applets a server and its clients need.
func (e *daemonEnv) netbox(t *testing.T) {
	t.Helper()
	tar := testenv.BusyboxTar(t, filepath.Join(e.dir, "netbox.tar"),
		[]string{"sh", "echo", "cat", "mkdir", "sleep", "true", "httpd", "wget", "nc", "ls", "stat"}, nil)
	clitest.Must(t, e.root, "image", "import", tar, "--tag", "netbox:1")
	clitest.Must(t, e.root, "trust", "sign", "netbox:1")
}

// exposing imports and signs web:1, netbox's layer with 8080/tcp exposed in its config (built
// with umoci), for -P; false when umoci is missing.
func (e *daemonEnv) exposing(t *testing.T) bool {
	t.Helper()
	if _, err := exec.LookPath("umoci"); err != nil {
		return false
	}
	layout := filepath.Join(e.dir, "layout")
	for _, args := range [][]string{
		{"init", "--layout", layout},
		{"new", "--image", layout + ":web"},
		{"raw", "add-layer", "--image", layout + ":web", filepath.Join(e.dir, "netbox.tar")},
		{"config", "--image", layout + ":web", "--config.exposedports", "8080/tcp"},
	} {
		if out, err := exec.Command("umoci", args...).CombinedOutput(); err != nil {
			t.Fatalf("umoci %v: %v: %s", args, err, out)
		}
	}
	clitest.Must(t, e.root, "image", "import", layout, "--tag", "web:1")
	clitest.Must(t, e.root, "trust", "sign", "web:1")
	return true
}

// refused runs docker as tn, which must fail with stderr containing every one of want.
func (e *daemonEnv) refused(t *testing.T, tn tenant, want []string, args ...string) {
	t.Helper()
	out, err := e.docker(t, tn, args...)
	if err == nil {
		t.Errorf("docker %v succeeded: %s", args, out)
		return
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("docker %v: %v; want %q in it", args, err, w)
		}
	}
}

// noNetworkLeft checks the daemon's namespace holds no veth, bridge, Bulwark chain or CNI rule
// but portmap's base chains.
func noNetworkLeft(t *testing.T, ns string) {
	t.Helper()
	for what, cmd := range map[string]string{
		"veths":          "ip -o link show type veth",
		"bridges":        "ip -o link show type bridge",
		"Bulwark chains": "iptables-save | grep -E 'BULWARK|BWE-' || true",
		// portmap's base chains and their fixed rules stay; no container's DNAT may.
		"CNI rules": "iptables-save -t nat | grep -e CNI- | grep -v -e CNI-HOSTPORT- ; iptables-save -t nat | grep -e CNI-DN- -e 'dport 180' || true",
	} {
		if out := nsh(t, ns, cmd); strings.TrimSpace(out) != "" {
			t.Errorf("%s left: %s", what, out)
		}
	}
}

const serveScript = `mkdir -p /tmp/www && echo hello-from-web > /tmp/www/index.html && exec httpd -f -p 80 -h /tmp/www`

// TestNetworksDocker: per-tenant networks with the docker CLI: create (with a subnet of the
// pool), ls, inspect, rm, prune; a server on a user network published with -p on the
// daemon's loopback and fetched from there; a second container reaching it by name; inspect's
// NetworkSettings; connect, --network host and -p with --network none refused with why; bob
// neither sees nor removes alice's network; nothing left after.
func TestNetworksDocker(t *testing.T) {
	ns := testNetns(t)
	e := startDaemonWith(t, daemonOptions{netns: ns})
	e.netbox(t)
	a, b := e.alice, e.bob

	aliceID := strings.TrimSpace(e.mustDocker(t, a, "network", "create", "net1"))
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(aliceID) {
		t.Fatalf("network create printed %q, want an id", aliceID)
	}
	bobID := strings.TrimSpace(e.mustDocker(t, b, "network", "create", "--driver", "bridge", "net1"))
	if bobID == aliceID {
		t.Errorf("two tenants' net1 have one id %s", aliceID)
	}
	e.refused(t, a, []string{"already exists"}, "network", "create", "net1")
	if ls := e.mustDocker(t, a, "network", "ls", "--format", "{{.ID}} {{.Name}} {{.Driver}}"); ls != aliceID[:12]+" net1 bridge\n" {
		t.Errorf("alice's network ls:\n%s", ls)
	}
	// bob: alice's network by id is unknown to him, as one that does not exist.
	e.refused(t, b, []string{"not found"}, "network", "inspect", aliceID)
	e.refused(t, b, []string{"not found"}, "network", "rm", aliceID[:12])
	e.mustDocker(t, b, "network", "rm", "net1")
	e.mustDocker(t, a, "network", "inspect", aliceID)

	// A subnet of the pool, and what a network here cannot be.
	e.mustDocker(t, a, "network", "create", "--subnet", "10.209.77.0/24", "net2")
	if sn := e.mustDocker(t, a, "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}", "net2"); sn != "10.209.77.0/24 10.209.77.1\n" {
		t.Errorf("net2's IPAM: %q", sn)
	}
	e.refused(t, a, []string{"subnet 192.168.77.0/24", "free /24 of 10.209.0.0/16"}, "network", "create", "--subnet", "192.168.77.0/24", "net3")
	e.refused(t, a, []string{"Driver", "overlay"}, "network", "create", "--driver", "overlay", "net3")
	e.refused(t, a, []string{"Internal"}, "network", "create", "--internal", "net3")
	e.refused(t, a, []string{"Options"}, "network", "create", "-o", "com.docker.network.bridge.name=x", "net3")

	// A server on net1 published on the daemon's loopback.
	e.mustDocker(t, a, "run", "-d", "--name", "web", "--network", "net1", "-p", "127.0.0.1:18080:80", "netbox:1", "sh", "-c", serveScript)
	fetch := "for i in $(seq 100); do busybox wget -qO- http://127.0.0.1:18080/ && exit; sleep 0.1; done; exit 1"
	if out := nsh(t, ns, fetch); out != "hello-from-web\n" {
		t.Errorf("fetched %q from the published port", out)
	}
	ip := strings.TrimSpace(e.mustDocker(t, a, "inspect", "-f", `{{(index .NetworkSettings.Networks "net1").IPAddress}}`, "web"))
	if !strings.HasPrefix(ip, "10.209.") {
		t.Errorf("web's address on net1: %q", ip)
	}
	if port := e.mustDocker(t, a, "port", "web"); port != "80/tcp -> 127.0.0.1:18080\n" {
		t.Errorf("docker port web: %q", port)
	}
	if ps := e.mustDocker(t, a, "ps", "--format", "{{.Names}} {{.Ports}}"); ps != "web 127.0.0.1:18080->80/tcp\n" {
		t.Errorf("ps: %q", ps)
	}
	if ctrs := e.mustDocker(t, a, "network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}", "net1"); ctrs != "web "+ip+"/24\n" {
		t.Errorf("net1's containers: %q", ctrs)
	}
	// A second container of the network reaches it by name.
	if out := e.mustDocker(t, a, "run", "--rm", "--network", "net1", "netbox:1", "wget", "-qO-", "http://web/"); out != "hello-from-web\n" {
		t.Errorf("by name from another container: %q", out)
	}
	// -P: the image's exposed port on a free port of the daemon's loopback.
	if e.exposing(t) {
		e.mustDocker(t, a, "run", "-d", "--name", "pall", "--network", "net2", "-P", "web:1", "sh", "-c",
			"mkdir -p /tmp/www && echo exposed > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www")
		hostPort := strings.TrimSpace(e.mustDocker(t, a, "port", "pall", "8080/tcp"))
		if !regexp.MustCompile(`^127\.0\.0\.1:[0-9]+$`).MatchString(hostPort) {
			t.Errorf("-P published 8080/tcp on %q", hostPort)
		}
		fetch := "for i in $(seq 100); do busybox wget -qO- http://" + hostPort + "/ && exit; sleep 0.1; done; exit 1"
		if out := nsh(t, ns, fetch); out != "exposed\n" {
			t.Errorf("fetched %q through -P", out)
		}
		e.mustDocker(t, a, "rm", "-f", "pall")
	}
	e.refused(t, a, []string{"does not implement network connect"}, "network", "connect", "net2", "web")
	e.refused(t, a, []string{"attached containers"}, "network", "rm", "net1")
	e.refused(t, a, []string{"host is refused"}, "run", "--rm", "--network", "host", "netbox:1", "true")
	e.refused(t, a, []string{"--network none"}, "run", "--rm", "--network", "none", "-p", "18081:80", "netbox:1", "true")
	e.refused(t, a, []string{"HostConfig.PortBindings", "a host port is required"}, "run", "--rm", "-p", "80", "netbox:1", "true")
	e.refused(t, a, []string{"IPAMConfig"}, "run", "--rm", "--network", "net1", "--ip", "10.209.0.50", "netbox:1", "true")
	if out := e.mustDocker(t, a, "run", "--rm", "--network", "none", "netbox:1", "cat", "/proc/net/dev"); strings.Contains(out, "eth0") {
		t.Errorf("--network none has an eth0:\n%s", out)
	}
	// bob sees none of it.
	if ls := e.mustDocker(t, b, "network", "ls", "-q"); ls != "" {
		t.Errorf("bob's network ls: %q", ls)
	}
	if out, _ := e.docker(t, b, "network", "prune", "-f"); strings.Contains(out, "net") {
		t.Errorf("bob's prune removed %s", out)
	}

	e.mustDocker(t, a, "rm", "-f", "web")
	e.mustDocker(t, a, "network", "rm", "net1")
	if out := e.mustDocker(t, a, "network", "prune", "-f"); !strings.Contains(out, "net2") {
		t.Errorf("network prune: %q", out)
	}
	if ls := e.mustDocker(t, a, "network", "ls", "-q"); ls != "" {
		t.Errorf("networks left: %q", ls)
	}
	noNetworkLeft(t, ns)
}

// TestVolumesDocker: per-tenant volumes with the docker CLI: create (sized), ls, inspect, rm,
// prune; a named volume written by one container and read by the next, with -v and --mount;
// host binds decided by the run policy's allowlist (Docker's default rw refused where the
// tenant may only read, never made read-only); tmpfs mounts; anonymous volumes and their
// removal with rm -v and --rm; bob neither sees nor removes alice's volumes; unsupported
// fields refused by name.
func TestVolumesDocker(t *testing.T) {
	testenv.RequireRoot(t)
	var ro, rw string
	e := startDaemonWith(t, daemonOptions{tenantData: func(e *daemonEnv) (map[string]any, map[string]any) {
		ro, rw = filepath.Join(e.dir, "ro"), filepath.Join(e.dir, "rw")
		for _, d := range []string{ro, rw} {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(ro, "greeting"), []byte("from-the-host\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(rw, 983040, 983040); err != nil { // the storage range's root
			t.Fatal(err)
		}
		return map[string]any{"bind_sources": []string{ro}, "writable_bind_sources": []string{rw}}, map[string]any{}
	}})
	a, b := e.alice, e.bob

	e.mustDocker(t, a, "volume", "create", "data")
	e.mustDocker(t, b, "volume", "create", "data")
	e.mustDocker(t, a, "volume", "create", "alice-only")
	e.mustDocker(t, a, "run", "--rm", "-v", "data:/d", "busybox:1", "sh", "-c", "echo alice-wrote > /d/f")
	if out := e.mustDocker(t, a, "run", "--rm", "-v", "data:/d:ro", "busybox:1", "cat", "/d/f"); out != "alice-wrote\n" {
		t.Errorf("read back with -v: %q", out)
	}
	if out := e.mustDocker(t, a, "run", "--rm", "--mount", "type=volume,src=data,dst=/d,readonly", "busybox:1", "cat", "/d/f"); out != "alice-wrote\n" {
		t.Errorf("read back with --mount: %q", out)
	}
	e.refused(t, a, []string{"Read-only file system"}, "run", "--rm", "-v", "data:/d:ro", "busybox:1", "sh", "-c", "echo x > /d/g")
	// bob's data is his own, alice's other volume is not his to see or remove.
	if out, err := e.docker(t, b, "run", "--rm", "-v", "data:/d", "busybox:1", "cat", "/d/f"); err == nil {
		t.Errorf("bob read alice's data: %q", out)
	}
	e.refused(t, b, []string{"no such volume"}, "volume", "inspect", "alice-only")
	e.refused(t, b, []string{"no such volume"}, "volume", "rm", "alice-only")
	if ls := e.mustDocker(t, b, "volume", "ls", "-q"); ls != "data\n" {
		t.Errorf("bob's volume ls: %q", ls)
	}
	if ls := e.mustDocker(t, a, "volume", "ls", "--format", "{{.Name}} {{.Driver}}"); ls != "alice-only local\ndata local\n" {
		t.Errorf("alice's volume ls: %q", ls)
	}

	// Sizes through the local driver's option, decided by the run policy; other options refused.
	e.mustDocker(t, a, "volume", "create", "--opt", "size=8m", "small")
	if sz := e.mustDocker(t, a, "volume", "inspect", "-f", "{{.Options.size}}", "small"); sz != "8388608\n" {
		t.Errorf("small's size: %q", sz)
	}
	e.refused(t, a, []string{"type"}, "volume", "create", "--opt", "type=nfs", "remote")
	e.refused(t, a, []string{"Driver", "nfs"}, "volume", "create", "--driver", "nfs", "remote")
	e.mustDocker(t, a, "volume", "rm", "small")

	// Host binds: the allowlist decides, Docker's read-write default is refused where the
	// tenant may only read.
	if out := e.mustDocker(t, a, "run", "--rm", "-v", ro+":/in:ro", "busybox:1", "cat", "/in/greeting"); out != "from-the-host\n" {
		t.Errorf("read-only bind: %q", out)
	}
	e.refused(t, a, []string{"MOUNT_WRITABLE_NOT_ALLOWED"}, "run", "--rm", "-v", ro+":/in", "busybox:1", "true")
	e.refused(t, a, []string{"MOUNT_WRITABLE_NOT_ALLOWED"}, "run", "--rm", "--mount", "type=bind,src="+ro+",dst=/in", "busybox:1", "true")
	e.mustDocker(t, a, "run", "--rm", "--mount", "type=bind,src="+rw+",dst=/out", "busybox:1", "sh", "-c", "echo written > /out/f")
	if fi, err := os.Stat(filepath.Join(rw, "f")); err != nil || fi.Sys().(*syscall.Stat_t).Uid != 983040 {
		t.Errorf("the writable bind's file: %v %v", fi, err)
	}
	e.refused(t, b, []string{"MOUNT_HOST_PATH_NOT_ALLOWED"}, "run", "--rm", "-v", ro+":/in:ro", "busybox:1", "true")
	e.refused(t, a, []string{"HostConfig.Mounts[0]", "Propagation"}, "run", "--rm", "--mount", "type=bind,src="+ro+",dst=/in,readonly,bind-propagation=rshared", "busybox:1", "true")
	e.refused(t, a, []string{"HostConfig.VolumesFrom"}, "run", "--rm", "--volumes-from", "web", "busybox:1", "true")
	if out := e.mustDocker(t, a, "run", "--rm", "--mount", "type=tmpfs,dst=/t,tmpfs-size=1m", "busybox:1", "sh", "-c", "echo t > /t/f && cat /t/f"); out != "t\n" {
		t.Errorf("tmpfs mount: %q", out)
	}

	// Anonymous volumes: rm -v and --rm remove them; a volume in use stays.
	e.mustDocker(t, a, "run", "--name", "anon", "-v", "/scratch", "-v", "data:/d", "busybox:1", "sh", "-c", "echo x > /scratch/f")
	var mounts []struct{ Type, Name, Destination string }
	if err := json.Unmarshal([]byte(e.mustDocker(t, a, "inspect", "-f", "{{json .Mounts}}", "anon")), &mounts); err != nil || len(mounts) != 2 {
		t.Fatalf("anon's mounts: %v %v", mounts, err)
	}
	anonName := ""
	for _, m := range mounts {
		if m.Destination == "/scratch" && m.Type == "volume" {
			anonName = m.Name
		}
	}
	if !strings.Contains(e.mustDocker(t, a, "volume", "ls", "-q"), anonName+"\n") || anonName == "" {
		t.Fatalf("anonymous volume %q not listed", anonName)
	}
	e.refused(t, a, []string{"in use"}, "volume", "rm", "data")
	e.mustDocker(t, a, "rm", "-v", "anon")
	e.mustDocker(t, a, "run", "--rm", "-v", "/scratch", "busybox:1", "true")
	if ls := e.mustDocker(t, a, "volume", "ls", "-q"); ls != "alice-only\ndata\n" {
		t.Errorf("volumes after rm -v and --rm: %q", ls)
	}
	// prune: anonymous ones only, as Docker's API 1.42 and later; -a all that are unused.
	e.mustDocker(t, a, "run", "--name", "kept", "-v", "/scratch", "busybox:1", "true")
	e.mustDocker(t, a, "rm", "kept")
	if out := e.mustDocker(t, a, "volume", "prune", "-f"); strings.Contains(out, "data") || strings.Count(out, "\n") < 2 {
		t.Errorf("volume prune: %q", out)
	}
	if ls := e.mustDocker(t, a, "volume", "ls", "-q"); ls != "alice-only\ndata\n" {
		t.Errorf("volumes after prune: %q", ls)
	}
	e.mustDocker(t, a, "volume", "prune", "-af")
	if ls := e.mustDocker(t, a, "volume", "ls", "-q"); ls != "" {
		t.Errorf("volumes after prune -a: %q", ls)
	}
	if ls := e.mustDocker(t, b, "volume", "ls", "-q"); ls != "data\n" {
		t.Errorf("bob's volumes after alice's prune: %q", ls)
	}
	e.mustDocker(t, b, "volume", "rm", "data")
}

// The Python SDK as alice, run in the daemon's network namespace: a network and a volume; one
// container writes a page into the volume, a server on the network serves it read-only on a
// published port; the script fetches it from loopback and from a container by name; inspect's
// addresses and ports; host networking refused; everything removed.
const netvolSDKScript = `
import sys, time, urllib.request, docker
c = docker.DockerClient(base_url="unix://" + sys.argv[1], version="auto")
net = c.networks.create("pynet", driver="bridge")
assert [n.name for n in c.networks.list()] == ["pynet"], c.networks.list()
vol = c.volumes.create("pyvol")
assert [v.name for v in c.volumes.list()] == ["pyvol"]
c.containers.run("netbox:1", ["sh", "-c", "echo from-volume > /www/index.html"], volumes=["pyvol:/www"], remove=True)
srv = c.containers.run("netbox:1", ["httpd", "-f", "-p", "80", "-h", "/www"], detach=True, name="pysrv",
                       network="pynet", ports={"80/tcp": ("127.0.0.1", 18090)}, volumes={"pyvol": {"bind": "/www", "mode": "ro"}})
for i in range(100):
    try:
        body = urllib.request.urlopen("http://127.0.0.1:18090/", timeout=5).read()
        break
    except OSError:
        time.sleep(0.1)
assert body == b"from-volume\n", body
srv.reload()
assert srv.attrs["NetworkSettings"]["Networks"]["pynet"]["IPAddress"].startswith("10.209."), srv.attrs["NetworkSettings"]
assert srv.ports == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18090"}]}, srv.ports
assert [m["Name"] for m in srv.attrs["Mounts"]] == ["pyvol"], srv.attrs["Mounts"]
out = c.containers.run("netbox:1", ["wget", "-qO-", "http://pysrv/"], network="pynet", remove=True)
assert out == b"from-volume\n", out
assert [x.name for x in net.containers] == ["pysrv"] if (net.reload() or True) else False
try:
    c.containers.run("netbox:1", ["true"], network_mode="host", remove=True)
    raise SystemExit("host networking was granted")
except docker.errors.APIError as err:
    assert err.status_code == 403 and "host is refused" in str(err), err
srv.remove(force=True)
net.remove()
vol.remove()
assert c.networks.list() == [] and c.volumes.list() == []
print("netvol sdk ok")
`

func TestNetVolPythonSDK(t *testing.T) {
	if err := exec.Command("python3", "-c", "import docker").Run(); err != nil {
		t.Skip("the Python docker SDK is not installed")
	}
	ns := testNetns(t)
	e := startDaemonWith(t, daemonOptions{netns: ns})
	e.netbox(t)
	sock := e.proxyAs(t, e.alice)
	cmd := exec.Command("nsenter", "--net="+ns, "python3", "-c", netvolSDKScript, sock)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil || !bytes.Contains(out.Bytes(), []byte("netvol sdk ok")) {
		t.Fatalf("python SDK: %v\n%s", err, out.String())
	}
	noNetworkLeft(t, ns)
}
