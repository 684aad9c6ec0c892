package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"

	"bulwark.dev/bulwark/sandbox"
)

type entry struct {
	name, body, link string
	dir              bool
}

func layerTar(tb testing.TB, ents []entry) []byte {
	tb.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		switch {
		case e.dir:
			h = &tar.Header{Name: e.name, Mode: 0o755, Typeflag: tar.TypeDir}
		case e.link != "":
			h = &tar.Header{Name: e.name, Mode: 0o777, Typeflag: tar.TypeSymlink, Linkname: e.link}
		case e.name == "bin/busybox":
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			tb.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// TestMultiLayerImage: an image of two layers, the upper one deleting a file (whiteout) and
// replacing a directory (opaque), is flattened as overlayfs merges it and runs.
func TestMultiLayerImage(t *testing.T) {
	root := signedRoot(t)
	bb, _ := os.ReadFile("/usr/bin/busybox")
	l1 := layerTar(t, []entry{{name: "bin/", dir: true}, {name: "bin/busybox", body: string(bb)}, {name: "bin/sh", link: "busybox"},
		{name: "etc/", dir: true}, {name: "etc/old", body: "old"}, {name: "etc/keep", body: "keep"},
		{name: "dir/", dir: true}, {name: "dir/a", body: "a"}})
	l2 := layerTar(t, []entry{{name: "etc/", dir: true}, {name: "etc/.wh.old"}, {name: "dir/", dir: true},
		{name: "dir/.wh..wh..opq"}, {name: "dir/b", body: "b"}, {name: "etc/new", body: "new"}})
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "l1.tar"), l1, 0o644)
	os.WriteFile(filepath.Join(dir, "l2.tar"), l2, 0o644)
	cfg, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Cmd": []string{"/bin/sh"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{digest.FromBytes(l1).String(), digest.FromBytes(l2).String()}},
	})
	os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644)
	man, _ := json.Marshal([]map[string]any{{"Config": "config.json", "RepoTags": []string{"multi:1"}, "Layers": []string{"l1.tar", "l2.tar"}}})
	os.WriteFile(filepath.Join(dir, "manifest.json"), man, 0o644)

	e, err := Open(Config{Root: root, Audit: discard{}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	desc, err := e.Store().Import(dir, "multi:1")
	if err != nil {
		t.Fatal(err)
	}
	tree, err := e.imageRootfs(desc)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{"etc/old": false, "dir/a": false, "etc/keep": true, "etc/new": true, "dir/b": true,
		"etc/.wh.old": false, "proc": true, "etc/hosts": true, "bin/busybox": true} {
		_, err := os.Lstat(filepath.Join(tree, p))
		if (err == nil) != want {
			t.Errorf("%s: present %v, want %v", p, err == nil, want)
		}
	}
	// No mount of the flattening is left in this mount namespace.
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if bytes.Contains(mi, []byte(root)) {
		t.Errorf("a mount under the state root is left:\n%s", mi)
	}
	sign(t, root, "multi:1", desc.Digest, desc.Size, desc.MediaType)
	var out bytes.Buffer
	r, w, _ := os.Pipe()
	plan, err := e.Prepare(context.Background(), &Request{Image: "multi:1", Remove: true,
		Args: []string{"/bin/busybox", "sh", "-c", "/bin/busybox cat /etc/keep /etc/new /dir/b; /bin/busybox ls /dir; test ! -e /etc/old"}})
	if err != nil {
		t.Fatal(err)
	}
	run, err := e.Start(context.Background(), plan, sandbox.IO{Stdout: w, Stderr: w})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	out.ReadFrom(r)
	info, err := run.Wait()
	if err != nil || info.Code != 0 || out.String() != "keepnewbb\n" {
		t.Errorf("run: %v, %+v, output %q", err, info, out.String())
	}
}

// TestPruneRootfs: a tree goes when its image has left the store and no container uses it.
func TestPruneRootfs(t *testing.T) {
	root := signedRoot(t)
	e, err := Open(Config{Root: root, Audit: discard{}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	plan, err := e.Prepare(context.Background(), &Request{Image: "busybox:1", Args: []string{"true"}, Name: "keeper"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.Start(context.Background(), plan, sandbox.IO{})
	if err != nil {
		t.Fatal(err)
	}
	r.Wait()
	trees, _ := filepath.Glob(filepath.Join(root, "rootfs", "sha256", "[0-9a-f]*"))
	if len(trees) != 1 {
		t.Fatalf("trees %v", trees)
	}
	if err := e.Store().Remove("busybox:1"); err != nil {
		t.Fatal(err)
	}
	if n, err := e.PruneRootfs(); err != nil || n != 0 {
		t.Errorf("pruned %d (%v) while a container was created from the tree", n, err)
	}
	if err := e.Remove("keeper", Caller{}, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(trees[0]); !os.IsNotExist(err) {
		t.Errorf("tree of a removed image kept after its last container went: %v", err)
	}
}
