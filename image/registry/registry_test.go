package registry

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"bulwark.dev/bulwark/image"
	"bulwark.dev/bulwark/image/imagetest"
)

func TestPushPullRegistry(t *testing.T) {
	addr, storage := imagetest.StartRegistry(t)
	src, _ := image.Open(t.TempDir())
	desc, err := src.Import(imagetest.WriteFile(t, t.TempDir(), "r.tar", imagetest.RootfsTar(t, map[string]string{"bin/app": "app"})), "demo/app:1")
	if err != nil {
		t.Fatal(err)
	}
	remoteRef := addr + "/demo/app:1"
	var calls int
	if _, err := Push(src, "demo/app:1", remoteRef, Options{Progress: func(int64, int64) { calls++ }}); err != nil {
		t.Fatal(err)
	}
	dst, _ := image.Open(t.TempDir())
	got, err := Pull(dst, remoteRef, "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != desc.Digest {
		t.Fatalf("pulled %s, pushed %s", got.Digest, desc.Digest)
	}
	if _, err := dst.Resolve(remoteRef); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Unpack(got, image.UnpackOptions{}); err != nil {
		t.Fatal(err)
	}

	// A blob altered in the registry's storage is refused by a fresh store.
	m, _ := src.Manifest(desc)
	enc := m.Layers[0].Digest.Encoded()
	data := filepath.Join(storage, "docker/registry/v2/blobs/sha256", enc[:2], enc, "data")
	if err := os.WriteFile(data, imagetest.RootfsTar(t, map[string]string{"bin/app": "evil"}), 0o644); err != nil {
		t.Fatal(err)
	}
	fresh, _ := image.Open(t.TempDir())
	_, err = Pull(fresh, remoteRef, "", Options{})
	if err == nil {
		t.Fatal("pull of a tampered registry blob succeeded")
	}
	t.Logf("tampered registry blob: %v", err)
	if fresh.HasBlob(m.Layers[0].Digest) {
		t.Fatal("tampered blob entered the store")
	}
}

func TestPlainHTTPGuard(t *testing.T) {
	g := guard{next: http.DefaultTransport}
	req, _ := http.NewRequest("GET", "http://10.1.2.3:5000/v2/", nil)
	if _, err := g.RoundTrip(req); !errors.Is(err, ErrPlainHTTP) {
		t.Fatalf("plain HTTP to a private address: %v", err)
	}
}
