// Package policy_test runs the `bulwark policy` command line as a user would: a built binary
// ($BULWARK_BIN/bulwark from `make test-integration`, else one built here), real files, real
// symlinks, signed bundles and exit statuses.
package policy_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bulwark.dev/bulwark/policy/policytest"
	"bulwark.dev/bulwark/tests/internal/clitest"
)

func TestMain(m *testing.M) { clitest.Main(m) }

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

func decode(t *testing.T, r clitest.Result) decision {
	t.Helper()
	var d decision
	if err := json.Unmarshal([]byte(r.Stdout), &d); err != nil {
		t.Fatalf("stdout is not a decision: %v\n%s\nstderr: %s", err, r.Stdout, r.Stderr)
	}
	return d
}

func TestEvalAllowAndDeny(t *testing.T) {
	root := t.TempDir()
	r := clitest.Run(t, root, "policy", "eval", "--input", request(t, nil))
	if d := decode(t, r); r.Code != 0 || !d.Allow || len(d.Reasons) != 0 || d.Revision == "" {
		t.Fatalf("allow case: exit %d, %+v, stderr %s", r.Code, d, r.Stderr)
	}

	r = clitest.Run(t, root, "policy", "eval", "--input", request(t, func(m map[string]any) {
		m["capabilities"] = []any{"CHOWN", "KILL", "SYS_ADMIN"}
	}))
	d := decode(t, r)
	if r.Code != 1 || d.Allow || len(d.Reasons) != 1 || d.Reasons[0].Code != "CAP_FORBIDDEN" ||
		d.Reasons[0].Message != "capability SYS_ADMIN is never granted" || d.Reasons[0].Path != "capabilities[2]" {
		t.Fatalf("SYS_ADMIN: exit %d, %+v", r.Code, d)
	}
	if !strings.Contains(r.Stderr, "CAP_FORBIDDEN") {
		t.Fatalf("stderr does not name the reason: %q", r.Stderr)
	}
}

func TestEvalResolvesSymlinkedBindSource(t *testing.T) {
	link := filepath.Join(t.TempDir(), "innocent")
	if err := os.Symlink("/etc", link); err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{link, link + "/../etc", "/usr/../etc/./"} {
		r := clitest.Run(t, t.TempDir(), "policy", "eval", "--input", request(t, func(m map[string]any) {
			m["mounts"] = append(m["mounts"].([]any), map[string]any{
				"type": "bind", "source": src, "destination": "/cfg", "options": []any{"rbind", "ro"}, "readOnly": true, "bind": true,
			})
		}))
		d := decode(t, r)
		if r.Code != 1 || d.Reasons[0].Code != "MOUNT_HOST_PATH_FORBIDDEN" || !strings.Contains(d.Reasons[0].Message, "/etc") {
			t.Fatalf("bind of %s: exit %d, %+v", src, r.Code, d)
		}
	}
}

// TestEvalHostBinds (issue 8 §7): binds are deny-by-default; the operator's data (--policy DIR
// with only a data.json) allowlists a directory per tenant; the state root in the document is
// never bound, allowlisted or not.
func TestEvalHostBinds(t *testing.T) {
	allowed := t.TempDir()
	stateRoot := filepath.Join(allowed, "state")
	withBind := func(src string) func(map[string]any) {
		return func(m map[string]any) {
			m["stateRoot"] = stateRoot
			m["mounts"] = append(m["mounts"].([]any), map[string]any{
				"type": "bind", "source": src, "destination": "/h", "options": []any{"rbind", "ro"}, "readOnly": true, "bind": true,
			})
		}
	}
	pol := t.TempDir()
	data := fmt.Sprintf(`{"bulwark": {"defaults": {"grantable_capabilities": ["CHOWN", "KILL", "NET_BIND_SERVICE"],
		"max_memory": 8589934592, "max_pids": 4096}, "tenants": {"default": {"bind_sources": [%q]}}}}`, allowed)
	if err := os.WriteFile(filepath.Join(pol, "data.json"), []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		src    string
		policy []string
		code   string
	}{
		{"/var/log", nil, "MOUNT_HOST_PATH_NOT_ALLOWED"},
		{"/home", nil, "MOUNT_HOST_PATH_NOT_ALLOWED"},
		{"/root", nil, "MOUNT_HOST_PATH_NOT_ALLOWED"},
		{filepath.Join(allowed, "data"), nil, "MOUNT_HOST_PATH_NOT_ALLOWED"},
		{allowed, []string{"--policy", pol}, "MOUNT_STATE_ROOT"}, // it contains the state root
		{filepath.Join(allowed, "data"), []string{"--policy", pol}, ""},
		{"/var/log", []string{"--policy", pol}, "MOUNT_HOST_PATH_NOT_ALLOWED"},
		{stateRoot, []string{"--policy", pol}, "MOUNT_STATE_ROOT"},
		{filepath.Join(stateRoot, "audit"), []string{"--policy", pol}, "MOUNT_STATE_ROOT"},
		{stateRoot, nil, "MOUNT_STATE_ROOT"},
	} {
		args := append([]string{"policy", "eval", "--input", request(t, withBind(tc.src))}, tc.policy...)
		r := clitest.Run(t, t.TempDir(), args...)
		d := decode(t, r)
		if tc.code == "" {
			if r.Code != 0 || !d.Allow {
				t.Errorf("bind of %s with %v: exit %d, %+v", tc.src, tc.policy, r.Code, d)
			}
			continue
		}
		if r.Code != 1 || len(d.Reasons) != 1 || d.Reasons[0].Code != tc.code || !strings.Contains(d.Reasons[0].Message, tc.src) {
			t.Errorf("bind of %s with %v: exit %d, %+v, want only %s", tc.src, tc.policy, r.Code, d, tc.code)
		}
	}
}

func TestEvalErrors(t *testing.T) {
	root := t.TempDir()
	if r := clitest.Run(t, root, "policy", "eval", "--input", "/nonexistent/request.json"); r.Code != 125 {
		t.Fatalf("missing input file: exit %d", r.Code)
	}
	broken := t.TempDir()
	if err := os.WriteFile(filepath.Join(broken, "p.rego"), []byte("package bulwark.run\ndecision := {"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := clitest.Run(t, root, "policy", "eval", "--policy", broken, "--input", request(t, nil)); r.Code != 125 || !strings.Contains(r.Stderr, "p.rego") {
		t.Fatalf("broken policy: exit %d, %s", r.Code, r.Stderr)
	}
	// A document missing fields is decided: denied, with the field named.
	r := clitest.Run(t, root, "policy", "eval", "--input", request(t, func(m map[string]any) { delete(m, "resources") }))
	if d := decode(t, r); r.Code != 1 || d.Reasons[0].Code != "REQUEST_INVALID" || d.Reasons[0].Path != "resources" {
		t.Fatalf("missing resources: exit %d, %+v", r.Code, d)
	}
}

func TestPolicyTest(t *testing.T) {
	root := t.TempDir()
	r := clitest.Run(t, root, "policy", "test")
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, "PASS: ") {
		t.Fatalf("embedded tests: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	dir := t.TempDir()
	src := "package bulwark.run\n\ndecision := {\"allow\": false, \"reasons\": []}\n\ntest_ok if decision.allow == false\n\ntest_bad if decision.allow\n"
	if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := clitest.Run(t, root, "policy", "test", dir); r.Code != 1 || !strings.Contains(r.Stdout, "FAIL bulwark.run.test_bad") {
		t.Fatalf("failing test: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
}

func TestSignedBundleAndRollback(t *testing.T) {
	key := policytest.NewKey(t)
	dir, root := t.TempDir(), t.TempDir()
	keyFile := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(keyFile, key.Public, 0o600); err != nil {
		t.Fatal(err)
	}
	write := func(name, revision string, sign bool) string {
		b := policytest.Bundle{
			Policy:   "package bulwark.run\n\ndecision := {\"allow\": input.tenant == \"default\", \"reasons\": []}\n",
			Revision: revision,
			Data:     map[string]any{},
		}
		if sign {
			b.Key, b.KeyID = &key, "k"
		}
		return policytest.Write(t, filepath.Join(dir, name), b)
	}
	req := request(t, nil)
	r := clitest.Run(t, root, "policy", "eval", "--bundle", write("r7.tar.gz", "7", true), "--verification-key", keyFile, "--input", req)
	if d := decode(t, r); r.Code != 0 || d.Revision != "7" {
		t.Fatalf("signed bundle: exit %d %+v %s", r.Code, d, r.Stderr)
	}
	r = clitest.Run(t, root, "policy", "eval", "--bundle", write("r6.tar.gz", "6", true), "--verification-key", keyFile, "--input", req)
	if r.Code != 125 || !strings.Contains(r.Stderr, "rollback") {
		t.Fatalf("older bundle: exit %d %s", r.Code, r.Stderr)
	}
	r = clitest.Run(t, root, "policy", "eval", "--bundle", write("u9.tar.gz", "9", false), "--verification-key", keyFile, "--input", req)
	if r.Code != 125 || !strings.Contains(r.Stderr, "signature") {
		t.Fatalf("unsigned bundle: exit %d %s", r.Code, r.Stderr)
	}
	r = clitest.Run(t, root, "policy", "show")
	var show struct {
		Source   string
		Accepted *struct{ Revision uint64 } `json:"acceptedBundleRevision"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &show); err != nil || r.Code != 0 || show.Source != "embedded" ||
		show.Accepted == nil || show.Accepted.Revision != 7 {
		t.Fatalf("show: exit %d %s %s", r.Code, r.Stdout, r.Stderr)
	}
}
