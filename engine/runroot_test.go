package engine

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/runroot"
	"bulwark.dev/bulwark/sandbox"
	"bulwark.dev/bulwark/signing"
)

// TestRunStateInRunRoot: a container's sandbox state is per-run state, in the run root (a tmpfs:
// here /dev/shm, by default the state root's directory under /run/bulwark), not on the state
// root's disk, where each file made or removed was a journalled operation on the run's path; its
// record stays on the state root. Once the state root has no container left, closing the engine
// leaves no run root behind.
func TestRunStateInRunRoot(t *testing.T) {
	root := signedRoot(t)
	run, err := os.MkdirTemp("/dev/shm", "bulwark-run-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(run)
	e, err := Open(Config{Root: root, RunRoot: run, Policies: inProcess(t), Trust: signing.Resolver{}})
	if err != nil {
		t.Fatal(err)
	}
	if def, err := Open(Config{Root: root, Policies: inProcess(t)}); err != nil || def.cfg.RunRoot != runroot.Of(root) {
		t.Errorf("default run root: %v", err)
	} else {
		def.Close()
	}
	plan, err := e.Prepare(context.Background(), &Request{Image: "busybox:1", Args: []string{"true"}, Name: "tmpfs", Remove: true})
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.Start(context.Background(), plan, sandbox.IO{})
	if err != nil {
		t.Fatal(err)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(filepath.Join(run, "containers", "tmpfs", "state.json"), &fs); err != nil || fs.Type != unix.TMPFS_MAGIC {
		t.Errorf("container state in the run root: %v (filesystem %#x, want tmpfs)", err, fs.Type)
	}
	if _, err := os.Stat(filepath.Join(root, "containers", "tmpfs")); err == nil {
		t.Error("container state on the state root")
	}
	if _, err := os.Stat(filepath.Join(root, "engine", "tmpfs", "meta.json")); err != nil {
		t.Errorf("container record: %v", err)
	}
	if info, err := r.Wait(); err != nil || info.Code != 0 {
		t.Fatalf("wait: %v, %+v", err, info)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(run); !os.IsNotExist(err) {
		ents, _ := os.ReadDir(run)
		t.Errorf("run root %s left behind: %v %v", run, err, ents)
	}
}
