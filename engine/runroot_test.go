package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/errdefs"
	"bulwark.dev/bulwark/internal/runroot"
	"bulwark.dev/bulwark/sandbox"
	"bulwark.dev/bulwark/signing"
)

// TestRunStateInRunRoot: a container's sandbox state is per-run state, in the run root (a tmpfs:
// here /dev/shm, by default the state root's directory under /run/bulwark), not on the state
// root's disk, where each file made or removed was a journalled operation on the run's path. So is
// the record of a foreground --rm run (it never outlives its client): ps and inspect see it, its
// name is taken in both places; a kept container's record is on the state root. Once the state
// root has no container left, closing the engine leaves no run root behind.
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
	if err := unix.Statfs(filepath.Join(run, "engine", "tmpfs", "meta.json"), &fs); err != nil || fs.Type != unix.TMPFS_MAGIC {
		t.Errorf("--rm container record in the run root: %v (filesystem %#x, want tmpfs)", err, fs.Type)
	}
	if _, err := os.Stat(filepath.Join(root, "engine", "tmpfs")); err == nil {
		t.Error("--rm container record on the state root")
	}
	if c, err := e.Inspect("tmpfs", Caller{}); err != nil || c.State == nil || c.Pid != r.Pid {
		t.Errorf("inspect: %v %+v", err, c)
	}
	if cs, err := e.List(Caller{}); err != nil || len(cs) != 1 || cs[0].ID != "tmpfs" {
		t.Errorf("list: %v %+v", err, cs)
	}
	if _, err := e.createMeta(&Meta{ID: "tmpfs"}, false); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("the name on the state root: %v, want already in use", err)
	}
	if info, err := r.Wait(); err != nil || info.Code != 0 {
		t.Fatalf("wait: %v, %+v", err, info)
	}
	if ents, _ := os.ReadDir(filepath.Join(run, "engine")); len(ents) != 0 {
		t.Errorf("run root's records after --rm: %v", ents)
	}
	plan, err = e.Prepare(context.Background(), &Request{Image: "busybox:1", Args: []string{"true"}, Name: "kept"})
	if err != nil {
		t.Fatal(err)
	}
	if r, err = e.Start(context.Background(), plan, sandbox.IO{}); err != nil {
		t.Fatal(err)
	}
	if info, err := r.Wait(); err != nil || info.Code != 0 {
		t.Fatalf("wait: %v, %+v", err, info)
	}
	if _, err := os.Stat(filepath.Join(root, "engine", "kept", "meta.json")); err != nil {
		t.Errorf("kept container's record: %v", err)
	}
	if err := e.Remove("kept", Caller{}, RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(run); !os.IsNotExist(err) {
		ents, _ := os.ReadDir(run)
		t.Errorf("run root %s left behind: %v %v", run, err, ents)
	}
}
