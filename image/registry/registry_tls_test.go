package registry

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"bulwark.dev/bulwark/image"
	"bulwark.dev/bulwark/image/imagetest"
)

// writeCA makes a CA and a server certificate for 127.0.0.1 signed by it.
func writeCA(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bulwark test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srv := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	return caFile, certFile, keyFile
}

// TestRegistryTLSAndBasicAuth: docker-registry with TLS from a private CA and htpasswd auth.
func TestRegistryTLSAndBasicAuth(t *testing.T) {
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Skip("docker-registry not installed")
	}
	dir := t.TempDir()
	caFile, certFile, keyFile := writeCA(t, dir)
	hash, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	htpasswd := filepath.Join(dir, "htpasswd")
	os.WriteFile(htpasswd, []byte("alice:"+string(hash)+"\n"), 0o600)
	l, _ := net.Listen("tcp4", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	cfg := fmt.Sprintf("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n  tls:\n    certificate: %s\n    key: %s\nauth:\n  htpasswd:\n    realm: bulwark\n    path: %s\n",
		filepath.Join(dir, "storage"), addr, certFile, keyFile, htpasswd)
	cfgPath := filepath.Join(dir, "config.yml")
	os.WriteFile(cfgPath, []byte(cfg), 0o600)
	cmd := exec.Command(bin, "serve", cfgPath)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for i := 0; i < 100; i++ {
		if resp, err := insecure.Get("https://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}

	s, _ := image.Open(t.TempDir())
	if _, err := s.Import(imagetest.WriteFile(t, t.TempDir(), "r.tar", imagetest.RootfsTar(t, map[string]string{"bin/x": "x"})), "demo/tls:1"); err != nil {
		t.Fatal(err)
	}
	ref := addr + "/demo/tls:1"
	good := Options{CAFile: caFile, Username: "alice", Password: "s3cret"}
	if _, err := Push(s, "demo/tls:1", ref, Options{Username: "alice", Password: "s3cret"}); err == nil ||
		!strings.Contains(err.Error(), "certificate") {
		t.Fatalf("push without the CA: %v", err)
	}
	bad := good
	bad.Password = "wrong"
	if _, err := Push(s, "demo/tls:1", ref, bad); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("push with a wrong password: %v", err)
	}
	if _, err := Push(s, "demo/tls:1", ref, good); err != nil {
		t.Fatal(err)
	}
	dst, _ := image.Open(t.TempDir())
	if _, err := Pull(dst, ref, "", good); err != nil {
		t.Fatal(err)
	}
}
