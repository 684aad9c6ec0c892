package daemon

import (
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"bulwark.dev/bulwark/image/imagetest"
	"bulwark.dev/bulwark/tests/internal/clitest"
	"bulwark.dev/bulwark/tests/internal/testenv"
)

// docker pull through TUF from a real registry (Debian's docker-registry): a signed tag is
// pulled by its signed digest, an unsigned one is refused with the reason; docker image inspect
// and docker rmi, with what a tenant may remove: only a reference it pulled (holds), never while
// a container of its own uses it, and another tenant's hold keeps the image in the store.
func TestImagesPullInspectRemove(t *testing.T) {
	e := startDaemon(t, nil)
	a, b := e.alice, e.bob
	reg, _ := imagetest.StartRegistry(t)
	signed, unsigned := reg+"/bb:signed", reg+"/bb:unsigned"
	tar := testenv.BusyboxTar(t, filepath.Join(e.dir, "bb.tar"), []string{"sh", "echo", "true"}, nil)
	for _, ref := range []string{signed, unsigned} {
		clitest.Must(t, e.root, "image", "import", tar, "--tag", ref)
	}
	clitest.Must(t, e.root, "trust", "sign", signed)
	for _, ref := range []string{signed, unsigned} {
		clitest.Must(t, e.root, "image", "push", ref)
		clitest.Must(t, e.root, "image", "rm", ref)
	}

	_, err := e.docker(t, a, "pull", unsigned)
	var ce *cliError
	if !errors.As(err, &ce) || ce.code() == 0 || !strings.Contains(ce.stderr, "not a signed target") {
		t.Errorf("pull of an unsigned tag: want refused with the reason, got %v", err)
	}
	if out := e.mustDocker(t, a, "images", "--format", "{{.Repository}}:{{.Tag}}"); strings.Contains(out, "unsigned") {
		t.Errorf("the refused pull left an image: %q", out)
	}
	e.mustDocker(t, a, "pull", signed)
	out := e.mustDocker(t, a, "image", "inspect", "-f", "{{.Os}} {{.Architecture}} {{index .RepoTags 0}} {{len .RootFS.Layers}} {{.GraphDriver.Name}}", signed)
	if out != "linux "+runtime.GOARCH+" "+signed+" 1 bulwark\n" {
		t.Errorf("image inspect: %q", out)
	}
	if out := e.mustDocker(t, a, "run", "--rm", signed, "echo", "pulled"); out != "pulled\n" {
		t.Errorf("run of the pulled image: %q", out)
	}

	// Removal: bob does not hold alice's pull, nobody but the operator removes busybox:1.
	for _, c := range []struct {
		tn  tenant
		ref string
	}{{b, signed}, {a, "busybox:1"}} {
		if _, err := e.docker(t, c.tn, "rmi", c.ref); err == nil || !strings.Contains(err.Error(), "CROSS_TENANT") {
			t.Errorf("uid %d: rmi %s: want refused (CROSS_TENANT), got %v", c.tn.uid, c.ref, err)
		}
	}
	e.mustDocker(t, a, "create", "--name", "user", signed, "true")
	if _, err := e.docker(t, a, "rmi", signed); !errors.As(err, &ce) || !strings.Contains(ce.stderr, "is using its referenced image") {
		t.Errorf("rmi of an image a container uses: %v", err)
	}
	e.mustDocker(t, a, "rm", "user")
	// Held by both: alice's rmi ends her hold, bob's keeps the image.
	e.mustDocker(t, b, "pull", signed)
	if out := e.mustDocker(t, a, "rmi", signed); !strings.Contains(out, "Untagged: "+signed) {
		t.Errorf("alice's rmi: %q", out)
	}
	e.mustDocker(t, b, "image", "inspect", signed)
	if _, err := e.docker(t, a, "rmi", signed); err == nil {
		t.Error("alice removed an image she no longer holds")
	}
	if out := e.mustDocker(t, b, "rmi", signed); !strings.Contains(out, "Untagged: "+signed) || !strings.Contains(out, "Deleted: sha256:") {
		t.Errorf("bob's rmi: %q", out)
	}
	if _, err := e.docker(t, a, "image", "inspect", signed); err == nil || !strings.Contains(err.Error(), "No such image") {
		t.Errorf("image inspect after the last rmi: %v", err)
	}

	// The Python SDK pulls, reads and removes the same way.
	if err := exec.Command("python3", "-c", "import docker").Run(); err != nil {
		t.Skip("the Python docker SDK is not installed")
	}
	sock := e.proxyAs(t, a)
	cmd := exec.Command("python3", "-c", sdkImagesScript, sock, reg+"/bb")
	var sdkOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &sdkOut, &sdkOut
	if err := cmd.Run(); err != nil || !bytes.Contains(sdkOut.Bytes(), []byte("sdk images ok")) {
		t.Fatalf("python SDK: %v\n%s", err, sdkOut.String())
	}
}

const sdkImagesScript = `
import sys, docker
c = docker.DockerClient(base_url="unix://" + sys.argv[1], version="auto")
repo = sys.argv[2]
# The SDK's images.pull does not read errors from the progress stream; its API does.
log = list(c.api.pull(repo, tag="unsigned", stream=True, decode=True))
assert "not a signed target" in log[-1].get("error", ""), log
img = c.images.pull(repo, tag="signed")
assert img.tags == [repo + ":signed"], img.tags
assert c.images.get(repo + ":signed").id == img.id
c.images.remove(repo + ":signed")
try:
    c.images.get(repo + ":signed")
    raise SystemExit("still there")
except docker.errors.ImageNotFound:
    pass
print("sdk images ok")
`
