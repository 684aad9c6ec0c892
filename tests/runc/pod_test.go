package runc

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/sandbox"
	"bulwark.dev/bulwark/tests/internal/testenv"
)

// The pod model (issue 15): containerd's CRI plugin makes a sandbox (pause) container per pod,
// then starts each container of the pod in the sandbox's network, ipc and uts namespaces,
// naming them /proc/<sandbox pid>/ns/<type>. The runtime proves what such a namespace is from
// its own records and the namespace's identity, never from the path.

// podSpec is a spec as the CRI plugin writes it: the pod's annotations, and for a container the
// sandbox init's network, ipc and uts namespaces.
func podSpec(args []string, pod string, sandboxPid int) *specs.Spec {
	s := testenv.Spec(args)
	s.Annotations = map[string]string{sandbox.AnnotationSandboxID: pod, sandbox.AnnotationContainerType: "sandbox"}
	s.Hostname = pod
	if sandboxPid == 0 {
		return s
	}
	s.Annotations[sandbox.AnnotationContainerType] = "container"
	s.Hostname = "" // the pod's
	for i, ns := range s.Linux.Namespaces {
		if file := map[specs.LinuxNamespaceType]string{specs.NetworkNamespace: "net", specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts"}[ns.Type]; file != "" {
			s.Linux.Namespaces[i].Path = "/proc/" + strconv.Itoa(sandboxPid) + "/ns/" + file
		}
	}
	return s
}

// nsOf reads the namespace links of a host pid.
func nsOf(t *testing.T, pid int, file string) string {
	t.Helper()
	l, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/" + file)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestPodContainersShareSandboxNamespaces: two containers of a pod join its sandbox's network,
// ipc, uts and user namespaces (and id range), keep their own pid and mount namespaces, and talk
// over localhost; a container of another tenant naming the same sandbox, or another pod's
// container, cannot join them; the host's namespaces are refused whatever the path.
func TestPodContainersShareSandboxNamespaces(t *testing.T) {
	c, leaks := newCLI(t)
	sr := t.TempDir()
	pol := tenantsPolicy(t)
	as := func(tenant string, args ...string) []string {
		return append([]string{"--state-root", sr, "--policy", pol, "--tenant", tenant}, args...)
	}
	base := testenv.UniqueID(t)
	pod := leaks.Track(base + "-pod")
	sbBundle := testenv.Bundle(t, podSpec([]string{"/bin/sleep", "60"}, pod, 0))
	leaks.Dir(sbBundle)
	c.ok(as("alice", "run", "--detach", "--bundle", sbBundle, pod)...)
	t.Cleanup(func() { c.run(as("alice", "delete", "--force", pod)...) })
	sb := c.state(as("alice", pod)...)

	server, client := leaks.Track(base+"-srv"), leaks.Track(base+"-cli")
	srvBundle := testenv.Bundle(t, podSpec([]string{"/bin/sh", "-c", "echo pong-$(hostname) | nc -l -p 8080"}, pod, sb.Pid))
	leaks.Dir(srvBundle)
	c.ok(as("alice", "run", "--detach", "--bundle", srvBundle, server)...)
	t.Cleanup(func() { c.run(as("alice", "delete", "--force", server)...) })
	srv := c.state(as("alice", server)...)
	for _, file := range []string{"net", "ipc", "uts", "user"} {
		if got, want := nsOf(t, srv.Pid, file), nsOf(t, sb.Pid, file); got != want {
			t.Errorf("pod container's %s namespace %s, its sandbox's %s", file, got, want)
		}
	}
	for _, file := range []string{"pid", "mnt"} {
		if nsOf(t, srv.Pid, file) == nsOf(t, sb.Pid, file) {
			t.Errorf("pod container shares its sandbox's %s namespace", file)
		}
	}
	if srv.UIDBase != sb.UIDBase || srv.Size != sb.Size {
		t.Errorf("pod container's id range %d+%d, its sandbox's %d+%d", srv.UIDBase, srv.Size, sb.UIDBase, sb.Size)
	}

	// The client dials the server on the pod's loopback until it listens.
	cliBundle := testenv.Bundle(t, podSpec([]string{"/bin/sh", "-c",
		"for i in $(seq 100); do nc 127.0.0.1 8080 </dev/null && exit 0; sleep 0.1; done; exit 1"}, pod, sb.Pid))
	leaks.Dir(cliBundle)
	r := c.run(as("alice", "run", "--bundle", cliBundle, client)...)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "pong-"+sb.ID {
		t.Errorf("client in the pod: exit %d, stdout %q, stderr %q; want pong-%s (the pod's hostname)", r.code, r.stdout, r.stderr, sb.ID)
	}

	refused := func(name, want string, args ...string) {
		t.Helper()
		id := args[len(args)-1]
		r := c.run(args...)
		if r.code != 1 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "NAMESPACE_SHARED") {
			c.run(append(args[:6:6], "delete", "--force", id)...)
			t.Errorf("%s: exit %d, stderr %q; want a refusal naming %q", name, r.code, r.stderr, want)
		}
	}
	// Bob names alice's sandbox as his pod: its namespaces are not his.
	bobs := leaks.Track(base + "-bob")
	refused("another tenant", "not a namespace of this pod's sandbox", as("bob", "run", "--detach", "--bundle", cliBundle, bobs)...)
	// Another pod of alice's names the first pod's sandbox.
	other := testenv.Bundle(t, podSpec([]string{"/bin/true"}, base+"-pod2", sb.Pid))
	leaks.Dir(other)
	refused("another pod", "not a namespace of this pod's sandbox", as("alice", "run", "--detach", "--bundle", other, leaks.Track(base+"-p2"))...)
	// The host's network namespace, by its /proc path or bound somewhere else.
	hostNet := podSpec([]string{"/bin/true"}, pod, sb.Pid)
	hostNet.Linux.Namespaces[1].Path = "/proc/" + strconv.Itoa(os.Getpid()) + "/ns/net" // this test's: the host's
	hb := testenv.Bundle(t, hostNet)
	leaks.Dir(hb)
	refused("host netns", "it is the host's", as("alice", "run", "--detach", "--bundle", hb, leaks.Track(base+"-h1"))...)

	// Stopping the sandbox: its namespaces are no longer a pod's to join.
	c.ok(as("alice", "kill", pod, "KILL")...)
	c.waitStatus(pod, specs.StateStopped, as("alice")...)
	late := leaks.Track(base + "-late")
	r = c.run(as("alice", "run", "--detach", "--bundle", cliBundle, late)...)
	if r.code != 1 {
		c.run(as("alice", "delete", "--force", late)...)
		t.Errorf("joined a stopped sandbox's namespaces: %+v", r)
	}
	for _, id := range []string{server, pod} {
		c.run(as("alice", "delete", "--force", id)...)
	}
}

// TestTrustedNetnsDirectory: a sandbox joins a network namespace the CNI caller made (here one
// the test makes and binds into a directory, as containerd does under /run/netns) only where the
// tenant's data trusts the directory; a bind of the host's network namespace in that directory
// is refused. The sandbox sees the namespace's interfaces in its own /sys.
func TestTrustedNetnsDirectory(t *testing.T) {
	c, leaks := newCLI(t)
	sr := t.TempDir()
	netnsDir := t.TempDir()
	pol := t.TempDir()
	data := `{"bulwark": {"defaults": {"max_memory": 1073741824, "max_pids": 1024}, "tenants": {"alice": {"trusted_netns_dirs": ["` + netnsDir + `"]}, "bob": {}}}}`
	if err := os.WriteFile(filepath.Join(pol, "data.json"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	as := func(tenant string, args ...string) []string {
		return append([]string{"--state-root", sr, "--policy", pol, "--tenant", tenant}, args...)
	}
	// A network namespace with a dummy interface, pinned by a bind mount (as `ip netns add`).
	cni := filepath.Join(netnsDir, "cni-test")
	hostBind := filepath.Join(netnsDir, "host")
	for _, f := range []string{cni, hostBind} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("unshare", "--net="+cni, "sh", "-c", "ip link add bwtest0 type bridge").CombinedOutput(); err != nil {
		t.Fatalf("make a network namespace: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", cni).Run() })
	if out, err := exec.Command("mount", "--bind", "/proc/self/ns/net", hostBind).CombinedOutput(); err != nil {
		t.Fatalf("bind the host's network namespace: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", hostBind).Run() })

	base := testenv.UniqueID(t)
	withNet := func(p string) *specs.Spec {
		s := podSpec([]string{"/bin/sh", "-c", "ls /sys/class/net"}, base, 0)
		s.Linux.Namespaces[1].Path = p
		return s
	}
	b := testenv.Bundle(t, withNet(cni))
	leaks.Dir(b)
	pod := leaks.Track(base)
	if r := c.run(as("alice", "run", "--bundle", b, pod)...); r.code != 0 || !strings.Contains(r.stdout, "bwtest0") {
		t.Errorf("sandbox in the trusted network namespace: %+v", r)
	}
	if r := c.run(as("bob", "run", "--bundle", b, leaks.Track(base+"-bob"))...); r.code != 1 || !strings.Contains(r.stderr, "NAMESPACE_SHARED") {
		t.Errorf("a tenant that does not trust the directory: %+v", r)
	}
	hb := testenv.Bundle(t, withNet(hostBind))
	leaks.Dir(hb)
	if r := c.run(as("alice", "run", "--bundle", hb, leaks.Track(base+"-h"))...); r.code != 1 || !strings.Contains(r.stderr, "it is the host's") {
		t.Errorf("the host's network namespace bound in the trusted directory: %+v", r)
	}
}

// TestPodPaths: a CRI tenant's data allows exactly the per-pod paths its caller makes (here the
// sandbox's shm directory and resolv.conf under a test directory shaped like containerd's): the
// pod's own are bound, writable where the entry says so, and CRI's resolv.conf is honoured in
// the pod's network (not replaced by a generated one); another pod's path is refused.
func TestPodPaths(t *testing.T) {
	c, leaks := newCLI(t)
	sr := t.TempDir()
	cri := t.TempDir()
	pol := t.TempDir()
	data := `{"bulwark": {"defaults": {"max_memory": 1073741824, "max_pids": 1024}, "tenants": {"k8s": {"pod_bind_sources": [
		{"source": "` + cri + `/sandboxes/{sandbox}/shm", "destination": "/dev/shm", "writable": true},
		{"source": "` + cri + `/sandboxes/{sandbox}/resolv.conf", "destination": "/etc/resolv.conf"}]}}}}`
	if err := os.WriteFile(filepath.Join(pol, "data.json"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	as := func(args ...string) []string {
		return append([]string{"--state-root", sr, "--policy", pol, "--tenant", "k8s"}, args...)
	}
	base := testenv.UniqueID(t)
	pod, other := base+"-pod", base+"-other"
	for _, id := range []string{pod, other} {
		shm := filepath.Join(cri, "sandboxes", id, "shm")
		if err := os.MkdirAll(shm, 0o755); err != nil {
			t.Fatal(err)
		}
		// Writable binds are idmapped to the storage range (never host root): container root
		// writes a directory the storage range's root owns.
		if err := os.Chown(shm, int(sandbox.StorageIDBase), int(sandbox.StorageIDBase)); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cri, "sandboxes", id, "resolv.conf"), []byte("nameserver 10.96.0.10\nsearch "+id+".svc\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	shmBind := func(s *specs.Spec, id string) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: filepath.Join(cri, "sandboxes", id, "shm"), Options: []string{"rbind", "rw"}})
	}
	sbSpec := podSpec([]string{"/bin/sleep", "60"}, pod, 0)
	shmBind(sbSpec, pod)
	sbBundle := testenv.Bundle(t, sbSpec)
	leaks.Dir(sbBundle)
	c.ok(as("run", "--detach", "--bundle", sbBundle, leaks.Track(pod))...)
	t.Cleanup(func() { c.run(as("delete", "--force", pod)...) })
	sb := c.state(as(pod)...)

	app := podSpec([]string{"/bin/sh", "-c", "echo hi > /dev/shm/x && cat /dev/shm/x /etc/resolv.conf"}, pod, sb.Pid)
	shmBind(app, pod)
	app.Mounts = append(app.Mounts, specs.Mount{Destination: "/etc/resolv.conf", Type: "bind", Source: filepath.Join(cri, "sandboxes", pod, "resolv.conf"), Options: []string{"rbind", "ro"}})
	appBundle := testenv.Bundle(t, app)
	leaks.Dir(appBundle)
	r := c.run(as("run", "--bundle", appBundle, leaks.Track(base+"-app"))...)
	if r.code != 0 || !strings.Contains(r.stdout, "hi\n") || !strings.Contains(r.stdout, "nameserver 10.96.0.10") {
		t.Errorf("pod container with its pod's shm and resolv.conf: %+v", r)
	}
	if b, err := os.ReadFile(filepath.Join(cri, "sandboxes", pod, "shm", "x")); err != nil || string(b) != "hi\n" {
		t.Errorf("the pod's shm holds %q (%v)", b, err)
	}

	// The same container asking for another pod's shm.
	stolen := podSpec([]string{"/bin/true"}, pod, sb.Pid)
	shmBind(stolen, other)
	sBundle := testenv.Bundle(t, stolen)
	leaks.Dir(sBundle)
	if r := c.run(as("run", "--bundle", sBundle, leaks.Track(base+"-steal"))...); r.code != 1 || !strings.Contains(r.stderr, "MOUNT_HOST_PATH_NOT_ALLOWED") {
		t.Errorf("another pod's shm: %+v", r)
	}
}
