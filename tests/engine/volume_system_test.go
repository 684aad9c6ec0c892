package engine

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/tests/internal/clitest"
)

func systemDf(t *testing.T, root string, args ...string) engine.DiskUsage {
	t.Helper()
	var du engine.DiskUsage
	out := clitest.Must(t, root, append([]string{"system", "df", "--json"}, args...)...)
	if err := json.Unmarshal([]byte(out), &du); err != nil {
		t.Fatalf("system df: %v\n%s", err, out)
	}
	return du
}

// TestSystemDf (issue 12): bulwark system df shows the images and layers (with the containers
// using them), the tenant's containers and volumes (another tenant's only with --all-tenants),
// with their sizes on disk; after rm, volume rm, image rm and image prune the state root holds no
// image tree, layer or volume any more.
func TestSystemDf(t *testing.T) {
	f := newFixture(t)
	id := f.name(t, "df")
	r := clitest.Run(t, f.root, "run", "--name", id, "-v", "data:/d", "busybox:1", "sh", "-c", "dd if=/dev/zero of=/d/blob bs=64k count=16 2>/dev/null")
	t.Cleanup(func() { clitest.Run(t, f.root, "rm", "-f", id) })
	if r.Code != 0 {
		t.Fatalf("run: exit %d, stderr %s", r.Code, r.Stderr)
	}
	pol := t.TempDir()
	os.WriteFile(filepath.Join(pol, "data.json"), []byte(`{"bulwark": {"tenants": {"default": {"max_memory": 1073741824, "max_pids": 1024}, "bob": {"max_memory": 1073741824, "max_pids": 1024}}}}`), 0o644)
	clitest.Must(t, f.root, "volume", "create", "--policy-dir", pol, "--tenant", "bob", "bobvol")
	du := systemDf(t, f.root)
	if len(du.Images) != 1 || du.Images[0].Ref != "busybox:1" || du.Images[0].Containers != 1 || du.Images[0].Size < 500<<10 {
		t.Errorf("images: %+v", du.Images)
	}
	if len(du.Layers) != 1 || du.Layers[0].Images != 1 || du.Layers[0].Containers != 1 || du.Layers[0].Size < 1<<20 {
		t.Errorf("layers: %+v", du.Layers)
	}
	if len(du.Containers) != 1 || du.Containers[0].ID != id || du.Containers[0].Status != "stopped" || du.Containers[0].Size == 0 {
		t.Errorf("containers: %+v", du.Containers)
	}
	if len(du.Volumes) != 1 || du.Volumes[0].Name != "data" || du.Volumes[0].Containers != 1 || du.Volumes[0].Size < 1<<20 {
		t.Errorf("volumes: %+v", du.Volumes)
	}
	if all := systemDf(t, f.root, "--all-tenants"); len(all.Volumes) != 2 || all.Volumes[0].Tenant != "bob" || all.Volumes[0].Name != "bobvol" {
		t.Errorf("--all-tenants volumes: %+v", all.Volumes)
	}
	if bob := systemDf(t, f.root, "--tenant", "bob"); len(bob.Containers) != 0 || len(bob.Volumes) != 1 || bob.Volumes[0].Name != "bobvol" {
		t.Errorf("bob's containers %+v and volumes %+v", bob.Containers, bob.Volumes)
	}
	out := clitest.Must(t, f.root, "system", "df")
	if !strings.HasPrefix(out, "TYPE") || !strings.Contains(out, "Volumes") {
		t.Errorf("summary: %q", out)
	}

	clitest.Must(t, f.root, "rm", id)
	clitest.Must(t, f.root, "volume", "rm", "data")
	clitest.Must(t, f.root, "volume", "rm", "--tenant", "bob", "bobvol")
	clitest.Must(t, f.root, "image", "rm", "busybox:1")
	clitest.Must(t, f.root, "image", "prune")
	if du := systemDf(t, f.root, "--all-tenants"); len(du.Images)+len(du.Layers)+len(du.Containers)+len(du.Volumes) != 0 {
		t.Errorf("after removal: %+v", du)
	}
	for _, d := range []string{"images/blobs/sha256", "images/ingest", "layers/sha256", "layers/tmp", "volumes/default", "volumes/bob"} {
		if ents, _ := os.ReadDir(filepath.Join(f.root, d)); len(ents) != 0 {
			t.Errorf("%s still holds %d entries", d, len(ents))
		}
	}
	f.assertNothingLeft(t)
}
