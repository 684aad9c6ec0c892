// Package policy_test runs the `bulwark policy` command line as a user would: a built binary
// ($BULWARK_BIN/bulwark from `make test-integration`, else one built here), real files, real
// symlinks, signed bundles and exit statuses.
package policy_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
)

var bulwarkBin string

func TestMain(m *testing.M) {
	var built string
	if dir := os.Getenv("BULWARK_BIN"); dir != "" {
		bulwarkBin = filepath.Join(dir, "bulwark")
	} else {
		tmp, err := os.MkdirTemp("", "bulwark-policy-cli-")
		if err != nil {
			panic(err)
		}
		bulwarkBin = filepath.Join(tmp, "bulwark")
		build := exec.Command("go", "build", "-o", bulwarkBin, "bulwark.dev/bulwark/cmd/bulwark")
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			panic("build bulwark: " + err.Error())
		}
		built = tmp
	}
	code := m.Run()
	if built != "" {
		os.RemoveAll(built)
	}
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, root string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bulwarkBin, append([]string{"--root", root}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}
}

type decision struct {
	Allow   bool `json:"allow"`
	Reasons []struct {
		Code, Message, Path string
	} `json:"reasons"`
	Revision string `json:"revision"`
}

// request returns the corpus's allowed request for the embedded policy's "default" tenant,
// changed by edit, written to a file.
func request(t *testing.T, edit func(map[string]any)) string {
	t.Helper()
	raw, err := os.ReadFile("../../policy/testdata/corpus/allow_minimal.json")
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Request map[string]any }
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	c.Request["tenant"] = "default"
	if edit != nil {
		edit(c.Request)
	}
	data, _ := json.Marshal(c.Request)
	p := filepath.Join(t.TempDir(), "request.json")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func decode(t *testing.T, r result) decision {
	t.Helper()
	var d decision
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
		t.Fatalf("stdout is not a decision: %v\n%s\nstderr: %s", err, r.stdout, r.stderr)
	}
	return d
}

func TestEvalAllowAndDeny(t *testing.T) {
	root := t.TempDir()
	r := run(t, root, "policy", "eval", "--input", request(t, nil))
	if d := decode(t, r); r.code != 0 || !d.Allow || len(d.Reasons) != 0 || d.Revision == "" {
		t.Fatalf("allow case: exit %d, %+v, stderr %s", r.code, d, r.stderr)
	}

	r = run(t, root, "policy", "eval", "--input", request(t, func(m map[string]any) {
		m["capabilities"] = []any{"CHOWN", "KILL", "SYS_ADMIN"}
	}))
	d := decode(t, r)
	if r.code != 1 || d.Allow || len(d.Reasons) != 1 || d.Reasons[0].Code != "CAP_FORBIDDEN" ||
		d.Reasons[0].Message != "capability SYS_ADMIN is never granted" || d.Reasons[0].Path != "capabilities[2]" {
		t.Fatalf("SYS_ADMIN: exit %d, %+v", r.code, d)
	}
	if !strings.Contains(r.stderr, "CAP_FORBIDDEN") {
		t.Fatalf("stderr does not name the reason: %q", r.stderr)
	}
}

func TestEvalResolvesSymlinkedBindSource(t *testing.T) {
	link := filepath.Join(t.TempDir(), "innocent")
	if err := os.Symlink("/etc", link); err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{link, link + "/../etc", "/usr/../etc/./"} {
		r := run(t, t.TempDir(), "policy", "eval", "--input", request(t, func(m map[string]any) {
			m["mounts"] = append(m["mounts"].([]any), map[string]any{
				"type": "bind", "source": src, "destination": "/cfg", "options": []any{"rbind", "ro"}, "readOnly": true, "bind": true,
			})
		}))
		d := decode(t, r)
		if r.code != 1 || d.Reasons[0].Code != "MOUNT_HOST_PATH_FORBIDDEN" || !strings.Contains(d.Reasons[0].Message, "/etc") {
			t.Fatalf("bind of %s: exit %d, %+v", src, r.code, d)
		}
	}
}

func TestEvalErrors(t *testing.T) {
	root := t.TempDir()
	if r := run(t, root, "policy", "eval", "--input", "/nonexistent/request.json"); r.code != 125 {
		t.Fatalf("missing input file: exit %d", r.code)
	}
	broken := t.TempDir()
	if err := os.WriteFile(filepath.Join(broken, "p.rego"), []byte("package bulwark.run\ndecision := {"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := run(t, root, "policy", "eval", "--policy", broken, "--input", request(t, nil)); r.code != 125 || !strings.Contains(r.stderr, "p.rego") {
		t.Fatalf("broken policy: exit %d, %s", r.code, r.stderr)
	}
	// A document missing fields is decided: denied, with the field named.
	r := run(t, root, "policy", "eval", "--input", request(t, func(m map[string]any) { delete(m, "resources") }))
	if d := decode(t, r); r.code != 1 || d.Reasons[0].Code != "REQUEST_INVALID" || d.Reasons[0].Path != "resources" {
		t.Fatalf("missing resources: exit %d, %+v", r.code, d)
	}
}

func TestPolicyTest(t *testing.T) {
	root := t.TempDir()
	r := run(t, root, "policy", "test")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "PASS: ") {
		t.Fatalf("embedded tests: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	dir := t.TempDir()
	src := "package bulwark.run\n\ndecision := {\"allow\": false, \"reasons\": []}\n\ntest_ok if decision.allow == false\n\ntest_bad if decision.allow\n"
	if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := run(t, root, "policy", "test", dir); r.code != 1 || !strings.Contains(r.stdout, "FAIL bulwark.run.test_bad") {
		t.Fatalf("failing test: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestSignedBundleAndRollback(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privDER, _ := x509.MarshalPKCS8PrivateKey(k)
	pubDER, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	priv := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})
	dir, root := t.TempDir(), t.TempDir()
	keyFile := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	write := func(name, revision string, sign bool) string {
		src := "package bulwark.run\n\ndecision := {\"allow\": input.tenant == \"default\", \"reasons\": []}\n"
		mod := ast.MustParseModuleWithOpts(src, ast.ParserOptions{RegoVersion: ast.RegoV1})
		b := bundle.Bundle{
			Manifest: bundle.Manifest{Revision: revision},
			Data:     map[string]any{},
			Modules:  []bundle.ModuleFile{{URL: "/run.rego", Path: "/run.rego", Raw: []byte(src), Parsed: mod}},
		}
		b.Manifest.Init()
		if sign {
			if err := b.GenerateSignature(bundle.NewSigningConfig(string(priv), "ES256", ""), "k", false); err != nil {
				t.Fatal(err)
			}
		}
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := bundle.NewWriter(f).Write(b); err != nil {
			t.Fatal(err)
		}
		return p
	}
	req := request(t, nil)
	r := run(t, root, "policy", "eval", "--bundle", write("r7.tar.gz", "7", true), "--verification-key", keyFile, "--input", req)
	if d := decode(t, r); r.code != 0 || d.Revision != "7" {
		t.Fatalf("signed bundle: exit %d %+v %s", r.code, d, r.stderr)
	}
	r = run(t, root, "policy", "eval", "--bundle", write("r6.tar.gz", "6", true), "--verification-key", keyFile, "--input", req)
	if r.code != 125 || !strings.Contains(r.stderr, "rollback") {
		t.Fatalf("older bundle: exit %d %s", r.code, r.stderr)
	}
	r = run(t, root, "policy", "eval", "--bundle", write("u9.tar.gz", "9", false), "--verification-key", keyFile, "--input", req)
	if r.code != 125 || !strings.Contains(r.stderr, "signature") {
		t.Fatalf("unsigned bundle: exit %d %s", r.code, r.stderr)
	}
	r = run(t, root, "policy", "show")
	var show struct {
		Source   string
		Accepted *struct{ Revision uint64 } `json:"acceptedBundleRevision"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &show); err != nil || r.code != 0 || show.Source != "embedded" ||
		show.Accepted == nil || show.Accepted.Revision != 7 {
		t.Fatalf("show: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
}
