package daemon

import (
	"bytes"
	"os/exec"
	"testing"
)

// The Python docker SDK, as a tenant: ping, version, a foreground run's output, a detached
// container's logs, wait and removal, an exec on a terminal, a restart.
const sdkScript = `
import sys, docker
c = docker.DockerClient(base_url="unix://" + sys.argv[1], version="auto")
assert c.ping()
assert c.version()["Platform"]["Name"] == "Bulwark", c.version()
out = c.containers.run("busybox:1", ["echo", "hi"], remove=True)
assert out == b"hi\n", out
ctr = c.containers.run("busybox:1", ["sh", "-c", "echo from-sdk; exit 7"], detach=True, name="sdk")
res = ctr.wait()
assert res["StatusCode"] == 7, res
assert ctr.logs() == b"from-sdk\n", ctr.logs()
ctr.reload()
assert ctr.status == "exited", ctr.status
assert [x.name for x in c.containers.list(all=True)] == ["sdk"]
ctr.remove()
assert c.containers.list(all=True) == []
ctr = c.containers.run("busybox:1", ["sleep", "300"], detach=True, name="sdk-tty")
code, out = ctr.exec_run(["sh", "-c", "tty; exit 3"], tty=True)
assert code == 3 and out.startswith(b"/dev/pts/"), (code, out)
pid = ctr.attrs["State"]["Pid"]
ctr.restart(timeout=1)
ctr.reload()
assert ctr.status == "running" and ctr.attrs["State"]["Pid"] != pid, ctr.attrs["State"]
ctr.remove(force=True)
try:
    c.containers.run("busybox:1", ["true"], cap_add=["SYS_ADMIN"], remove=True)
    raise SystemExit("SYS_ADMIN was granted")
except docker.errors.APIError as err:
    assert err.status_code == 403 and "CAP_FORBIDDEN" in str(err), err
print("sdk ok")
`

func TestPythonSDK(t *testing.T) {
	if err := exec.Command("python3", "-c", "import docker").Run(); err != nil {
		t.Skip("the Python docker SDK is not installed")
	}
	e := startDaemon(t, nil)
	// The SDK is installed for root only: it runs as root and reaches the daemon through a
	// proxy running as alice, whose connections the daemon sees as alice's.
	sock := e.proxyAs(t, e.alice)
	cmd := exec.Command("python3", "-c", sdkScript, sock)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil || !bytes.Contains(out.Bytes(), []byte("sdk ok")) {
		t.Fatalf("python SDK: %v\n%s", err, out.String())
	}
}
