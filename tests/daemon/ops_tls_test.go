package daemon

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA issues certificates for the TLS test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T, cn string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue writes dir/{ca,cert,key}.pem: a leaf for cn (and DNS names) signed by ca, a server's
// (127.0.0.1) or a client's.
func (ca *testCA) issue(t *testing.T, dir, cn string, dns []string, server bool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, DNSNames: dns,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage, tmpl.IPAddresses = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"ca.pem":   ca.pem,
		"cert.pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"key.pem":  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// freePort is a TCP port on 127.0.0.1 free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// dockerTLS runs the docker CLI (as root: on TCP only the certificate says who calls) with the
// client certificate in dir.
func (e *daemonEnv) dockerTLS(t *testing.T, addr, dir string, args ...string) (string, error) {
	t.Helper()
	tlsArgs := []string{"--tlsverify", "--tlscacert", filepath.Join(dir, "ca.pem"), "--tlscert", filepath.Join(dir, "cert.pem"),
		"--tlskey", filepath.Join(dir, "key.pem"), "-H", "tcp://" + addr}
	return e.docker(t, tenant{}, append(tlsArgs, args...)...)
}

// The TCP listener is mutual TLS only: a client certificate from the client CA maps to a tenant
// by its subject CN or a DNS SAN (the configuration's cert_names), with the same isolation as
// on the unix socket; a client without a certificate, or with one from another CA, is refused in
// the handshake and never gets an answer; a certificate naming no tenant is TENANT_UNKNOWN; a TCP
// listener without a client CA is refused at start.
func TestTCPMutualTLS(t *testing.T) {
	e := startDaemon(t, nil)
	e.term(t)
	dir := filepath.Join(e.dir, "tls")
	ca := newCA(t, "bulwark test CA")
	ca.issue(t, filepath.Join(dir, "server"), "bulwarkd", nil, true)
	ca.issue(t, filepath.Join(dir, "alice"), "alice-client", nil, false)
	ca.issue(t, filepath.Join(dir, "bob"), "bob", []string{"bob.client.example"}, false)
	ca.issue(t, filepath.Join(dir, "nobody"), "nobody-client", nil, false)
	newCA(t, "rogue CA").issue(t, filepath.Join(dir, "rogue"), "alice-client", nil, false)
	addr := freePort(t)
	srv := filepath.Join(dir, "server")
	editJSON(t, e.cfgPath, func(cfg map[string]any) {
		cfg["tcp"] = map[string]any{"address": addr, "cert": filepath.Join(srv, "cert.pem"), "key": filepath.Join(srv, "key.pem"),
			"client_ca": filepath.Join(srv, "ca.pem")}
		tenants := cfg["tenants"].(map[string]any)
		tenants[e.alice.name].(map[string]any)["cert_names"] = []string{"alice-client"}
		tenants[e.bob.name].(map[string]any)["cert_names"] = []string{"bob.client.example"}
	})
	e.start(t)
	alice, bob := filepath.Join(dir, "alice"), filepath.Join(dir, "bob")

	if out, err := e.dockerTLS(t, addr, alice, "run", "--rm", "busybox:1", "echo", "over-tls"); err != nil || out != "over-tls\n" {
		t.Fatalf("docker run over mutual TLS: %q %v\n%s", out, err, e.log)
	}
	id, err := e.dockerTLS(t, addr, alice, "run", "-d", "--name", "web", "busybox:1", "sleep", "300")
	if err != nil {
		t.Fatal(err)
	}
	id = strings.TrimSpace(id)
	// The same tenant on the unix socket (by uid) sees it; bob (by certificate) does not.
	if out := e.mustDocker(t, e.alice, "ps", "--format", "{{.Names}}"); out != "web\n" {
		t.Errorf("alice's ps on the unix socket: %q", out)
	}
	if out, err := e.dockerTLS(t, addr, bob, "ps", "-a", "--format", "{{.Names}}"); err != nil || out != "" {
		t.Errorf("bob's ps over TLS: %q %v", out, err)
	}
	if _, err := e.dockerTLS(t, addr, bob, "container", "inspect", id); err == nil || !strings.Contains(err.Error(), "No such container") {
		t.Errorf("bob inspecting alice's container over TLS: %v", err)
	}
	if _, err := e.dockerTLS(t, addr, filepath.Join(dir, "nobody"), "ps"); err == nil || !strings.Contains(err.Error(), "TENANT_UNKNOWN") {
		t.Errorf("a certificate naming no tenant: %v", err)
	}

	// No certificate, or one from another CA: refused in the handshake, no answer ever.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.pem)
	rogue, err := tls.LoadX509KeyPair(filepath.Join(dir, "rogue", "cert.pem"), filepath.Join(dir, "rogue", "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	for name, certs := range map[string][]tls.Certificate{"no certificate": nil, "another CA's": {rogue}} {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Minute}, "tcp", addr, &tls.Config{RootCAs: pool, Certificates: certs, ServerName: "127.0.0.1"})
		if err == nil {
			c.SetDeadline(time.Now().Add(time.Minute))
			io.WriteString(c, "GET /containers/json HTTP/1.1\r\nHost: bulwarkd\r\n\r\n")
			var b []byte
			b, err = io.ReadAll(c)
			c.Close()
			if len(b) > 0 {
				t.Errorf("%s: answered %q", name, b)
			}
		}
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("%s: %v, want the handshake to fail on the certificate", name, err)
		}
	}
	if _, err := e.dockerTLS(t, addr, filepath.Join(dir, "rogue"), "ps"); err == nil {
		t.Errorf("the docker CLI with another CA's certificate was served")
	}
	if _, err := e.dockerTLS(t, addr, alice, "rm", "-f", "web"); err != nil {
		t.Error(err)
	}

	// TCP without a client CA: refused before anything listens.
	editJSON(t, e.cfgPath, func(cfg map[string]any) { delete(cfg["tcp"].(map[string]any), "client_ca") })
	out, err := exec.Command(bulwarkd, "--config", e.cfgPath, "--print-config").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "mutual TLS only") {
		t.Errorf("a TCP listener without a client CA: %v %s", err, out)
	}
}
