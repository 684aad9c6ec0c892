package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bulwark.dev/bulwark/signing"

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

// dockerSaveDir writes layers as a `docker save` directory tagged ref.
func dockerSaveDir(t *testing.T, ref string, layers ...[]byte) string {
	t.Helper()
	dir := t.TempDir()
	var names, diffIDs []string
	for i, l := range layers {
		name := fmt.Sprintf("l%d.tar", i)
		if err := os.WriteFile(filepath.Join(dir, name), l, 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
		diffIDs = append(diffIDs, digest.FromBytes(l).String())
	}
	cfg, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Cmd": []string{"/bin/sh"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644)
	man, _ := json.Marshal([]map[string]any{{"Config": "config.json", "RepoTags": []string{ref}, "Layers": names}})
	os.WriteFile(filepath.Join(dir, "manifest.json"), man, 0o644)
	return dir
}

// runImage runs args in ref and returns the output and exit code.
func runImage(t *testing.T, e *Engine, req *Request) (string, int) {
	t.Helper()
	r, w, _ := os.Pipe()
	plan, err := e.Prepare(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	run, err := e.Start(context.Background(), plan, sandbox.IO{Stdout: w, Stderr: w})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(r)
	info, err := run.Wait()
	if err != nil {
		t.Fatalf("run: %v (output %q)", err, out)
	}
	return string(out), info.Code
}

// TestMultiLayerImage: an image of two layers, the upper one deleting a file (whiteout) and
// replacing a directory (opaque), runs as overlayfs merges it, and the engine reads its files
// (user names) from the same merged view.
func TestMultiLayerImage(t *testing.T) {
	root := signedRoot(t)
	bb, _ := os.ReadFile("/usr/bin/busybox")
	l1 := layerTar(t, []entry{{name: "bin/", dir: true}, {name: "bin/busybox", body: string(bb)}, {name: "bin/sh", link: "busybox"},
		{name: "etc/", dir: true}, {name: "etc/old", body: "old"}, {name: "etc/keep", body: "keep"},
		{name: "etc/passwd", body: "root:x:0:0::/:/bin/sh\nold:x:7:7::/:/bin/sh\n"},
		{name: "dir/", dir: true}, {name: "dir/a", body: "a"}})
	l2 := layerTar(t, []entry{{name: "etc/", dir: true}, {name: "etc/.wh.old"}, {name: "dir/", dir: true},
		{name: "dir/.wh..wh..opq"}, {name: "dir/b", body: "b"}, {name: "etc/new", body: "new"},
		{name: "etc/passwd", body: "root:x:0:0::/:/bin/sh\napp:x:1234:1234::/:/bin/sh\n"}})
	e, err := Open(Config{Root: root, Policies: inProcess(t), Trust: signing.Resolver{}, Audit: discard{}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	desc, err := e.Store().Import(dockerSaveDir(t, "multi:1", l1, l2), "multi:1")
	if err != nil {
		t.Fatal(err)
	}
	sign(t, root, "multi:1", desc.Digest, desc.Size, desc.MediaType)
	out, code := runImage(t, e, &Request{Image: "multi:1", Remove: true, User: "app",
		Args: []string{"/bin/busybox", "sh", "-c", "/bin/busybox cat /etc/keep /etc/new /dir/b; /bin/busybox ls /dir; test ! -e /etc/old; /bin/busybox id -u"}})
	if code != 0 || out != "keepnewbb\n1234\n" {
		t.Errorf("run: exit %d, output %q", code, out)
	}
	// The engine's view of the image was a detached mount: nothing is left mounted.
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if bytes.Contains(mi, []byte(root)) {
		t.Errorf("a mount under the state root is left:\n%s", mi)
	}
}

// stateFiles counts the files and the bytes of the state root outside the content store
// (images/ and layers/), which a run must not grow with the image.
func stateFiles(t *testing.T, root string) (n int, size int64) {
	t.Helper()
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() && (rel == "images" || rel == "layers" || rel == "audit") {
			return filepath.SkipDir
		}
		if fi, err := d.Info(); err == nil && !d.IsDir() {
			n++
			size += fi.Size()
		}
		return nil
	})
	return n, size
}

// TestRunCopiesNothingOfTheImage (issue 9, issue 14): a container whose mounts need directories
// the image lacks (a tmpfs on /cache/deep, a workdir, the floor's /dev/mqueue) costs a handful
// of state files, whatever the image holds: here 2,000 files the old flattened copy and its
// per-container hard-link tree each reproduced. An image exists once on disk.
func TestRunCopiesNothingOfTheImage(t *testing.T) {
	root := signedRoot(t)
	bb, _ := os.ReadFile("/usr/bin/busybox")
	ents := []entry{{name: "bin/", dir: true}, {name: "bin/busybox", body: string(bb)}, {name: "bin/sh", link: "busybox"}, {name: "data/", dir: true}}
	for i := range 2000 {
		ents = append(ents, entry{name: fmt.Sprintf("data/f%04d", i), body: "x"})
	}
	e, err := Open(Config{Root: root, Policies: inProcess(t), Trust: signing.Resolver{}, Audit: discard{}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	desc, err := e.Store().Import(dockerSaveDir(t, "many:1", layerTar(t, ents)), "many:1")
	if err != nil {
		t.Fatal(err)
	}
	sign(t, root, "many:1", desc.Digest, desc.Size, desc.MediaType)
	// The first run unpacks the layers (once, into layers/).
	if out, code := runImage(t, e, &Request{Image: "many:1", Remove: true, Args: []string{"/bin/busybox", "true"}}); code != 0 {
		t.Fatalf("first run: %d %q", code, out)
	}
	before, beforeSize := stateFiles(t, root)
	r, w, _ := os.Pipe()
	plan, err := e.Prepare(context.Background(), &Request{Image: "many:1", Name: "keeper", Tmpfs: []string{"/cache/deep"}, Workdir: "/work/dir",
		Args: []string{"/bin/busybox", "sh", "-c", "/bin/busybox ls /data | /bin/busybox wc -l; /bin/busybox pwd; test -d /dev/mqueue && test -d /cache/deep && echo ok"}})
	if err != nil {
		t.Fatal(err)
	}
	run, err := e.Start(context.Background(), plan, sandbox.IO{Stdout: w, Stderr: w})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(r)
	// Counted while the container exists (stopped, not removed): its state is all there.
	info, err := run.Wait()
	if err != nil || info.Code != 0 || strings.Join(strings.Fields(string(out)), " ") != "2000 /work/dir ok" {
		t.Fatalf("run: %v %+v %q", err, info, out)
	}
	after, afterSize := stateFiles(t, root)
	if after-before > 20 || afterSize-beforeSize > 256<<10 {
		t.Errorf("a container added %d files, %d bytes to the state root (image: 2,000 files)", after-before, afterSize-beforeSize)
	}
	if _, err := os.Stat(filepath.Join(root, "rootfs")); !os.IsNotExist(err) {
		t.Errorf("a flattened rootfs/ exists: %v", err)
	}
	if err := e.Remove("keeper", Caller{}, RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
}

// TestManyLayers: an image of the store's maximum of layers runs. Their paths joined in one
// overlay option string would be far past mount(2)'s page limit; the sandbox passes each layer
// by descriptor, and the engine's own view by lowerdir+.
func TestManyLayers(t *testing.T) {
	const n = 256
	root := signedRoot(t)
	bb, _ := os.ReadFile("/usr/bin/busybox")
	layers := [][]byte{layerTar(t, []entry{{name: "bin/", dir: true}, {name: "bin/busybox", body: string(bb)}, {name: "etc/", dir: true},
		{name: "etc/passwd", body: "root:x:0:0::/:/bin/sh\nu:x:77:77::/:/bin/sh\n"}})}
	for i := 1; i < n; i++ {
		layers = append(layers, layerTar(t, []entry{{name: "l/", dir: true}, {name: fmt.Sprintf("l/%03d", i), body: "x"}}))
	}
	e, err := Open(Config{Root: root, Policies: inProcess(t), Trust: signing.Resolver{}, Audit: discard{}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	desc, err := e.Store().Import(dockerSaveDir(t, "layers:256", layers...), "layers:256")
	if err != nil {
		t.Fatal(err)
	}
	sign(t, root, "layers:256", desc.Digest, desc.Size, desc.MediaType)
	out, code := runImage(t, e, &Request{Image: "layers:256", Remove: true, User: "u",
		Args: []string{"/bin/busybox", "sh", "-c", "/bin/busybox ls /l | /bin/busybox wc -l; /bin/busybox id -u"}})
	if code != 0 || strings.Join(strings.Fields(out), " ") != fmt.Sprintf("%d 77", n-1) {
		t.Errorf("run of %d layers: exit %d, output %q", n, code, out)
	}
}

// TestPruneLayers: image prune removes the layers of an image that left the store once no
// container records them, and the flattened trees older versions left under rootfs/.
func TestPruneLayers(t *testing.T) {
	root := signedRoot(t)
	e, err := Open(Config{Root: root, Policies: inProcess(t), Trust: signing.Resolver{}, Audit: discard{}})
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
	legacy := filepath.Join(root, "rootfs", "sha256", "0123", "bin")
	os.MkdirAll(legacy, 0o755)
	layers, _ := filepath.Glob(filepath.Join(root, "layers", "sha256", "[0-9a-f]*"))
	if len(layers) != 1 {
		t.Fatalf("layers %v", layers)
	}
	if err := e.Store().Remove("busybox:1"); err != nil {
		t.Fatal(err)
	}
	if removed, err := e.PruneLayers(); err != nil || len(removed) != 0 {
		t.Errorf("pruned %v (%v) while a container records the layer", removed, err)
	}
	if _, err := os.Stat(filepath.Join(root, "rootfs")); !os.IsNotExist(err) {
		t.Errorf("the old flattened trees are left: %v", err)
	}
	if err := e.Remove("keeper", Caller{}, RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if removed, err := e.PruneLayers(); err != nil || len(removed) != 1 {
		t.Errorf("pruned %v (%v), want the image's one layer", removed, err)
	}
	if _, err := os.Stat(layers[0]); !os.IsNotExist(err) {
		t.Errorf("layer of a removed image kept after its last container went: %v", err)
	}
}
