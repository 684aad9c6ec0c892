package engine

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"bulwark.dev/bulwark/signing"
)

// A dry run makes no volume (issue 12): one that does not exist yet is decided on by the path it
// would have, and nothing is left under the state root's volumes (not the volume, not the
// tenant's directory); a real run then makes it at that path. Before, bind resolution needed the
// source, so a dry run made the volume (and, with a size, its filesystem image).
func TestDryRunMakesNoVolume(t *testing.T) {
	root := signedRoot(t)
	e, err := Open(Config{Root: root, Policies: inProcess(t), Trust: signing.Resolver{}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	plan, err := e.Prepare(context.Background(), &Request{Image: "busybox:1", Args: []string{"true"}, Name: "dry", DryRun: true, Volumes: []string{"fresh:/data"}})
	if err != nil {
		t.Fatal(err)
	}
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(real, "volumes", "default", "fresh", "_data")
	found := false
	for _, m := range plan.Spec.Mounts {
		if m.Destination == "/data" {
			found = m.Source == want
			if !found {
				t.Errorf("decided on source %s, want %s", m.Source, want)
			}
		}
	}
	if !found {
		t.Errorf("the plan has no mount at /data: %+v", plan.Spec.Mounts)
	}
	if _, err := os.Lstat(filepath.Join(root, "volumes", "default")); !os.IsNotExist(err) {
		t.Errorf("a dry run left the tenant's volumes directory: %v", err)
	}
	if vs, err := e.volumes.List("default"); err != nil || len(vs) != 0 {
		t.Errorf("a dry run made volumes %v (%v)", vs, err)
	}
}
