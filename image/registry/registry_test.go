package registry

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"bulwark.dev/bulwark/image"
)

// startRegistry runs Debian's docker-registry on a random loopback port with its storage in a
// temporary directory, and returns host:port and the storage directory.
func startRegistry(t *testing.T) (addr, storage string) {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Skip("docker-registry not installed (apt-get install docker-registry)")
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = l.Addr().String()
	l.Close()
	dir := t.TempDir()
	storage = filepath.Join(dir, "storage")
	cfg := fmt.Sprintf("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", storage, addr)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; i < 100; i++ {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr, storage
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("docker-registry did not come up")
	return "", ""
}

// rootfsTar is a layer tarball of files (name: body) under bin/.
func rootfsTar(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Unix(1e9, 0)})
	for name, body := range files {
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(body)), ModTime: time.Unix(1e9, 0)})
		tw.Write([]byte(body))
	}
	tw.Close()
	return buf.Bytes()
}

func writeFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPushPullRegistry(t *testing.T) {
	addr, storage := startRegistry(t)
	src, _ := image.Open(t.TempDir())
	desc, err := src.Import(writeFile(t, t.TempDir(), "r.tar", rootfsTar(t, map[string]string{"bin/app": "app"})), "demo/app:1")
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
	if err := os.WriteFile(data, rootfsTar(t, map[string]string{"bin/app": "evil"}), 0o644); err != nil {
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
