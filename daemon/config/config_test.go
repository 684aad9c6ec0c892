package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "bulwarkd.json")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadErrorsNameFileAndLine(t *testing.T) {
	for name, tc := range map[string]struct{ file, want string }{
		"unknown key":   {"{\n  \"socket\": \"/tmp/s.sock\",\n  \"sockets\": 1\n}", ":3: unknown key \"sockets\""},
		"syntax":        {"{\n  \"socket\": \"/tmp/s.sock\"\n  \"state_root\": \"/x\"\n}", ":3: "},
		"type":          {"{\n\n  \"operator_uids\": \"0\"\n}", ":3: "},
		"duration":      {"{\"limits\": {\n \"idle_timeout\": \"soon\"\n}}", "bad duration \"soon\""},
		"relative root": {"{\n \"state_root\": \"var/lib\"\n}", ":2: state_root \"var/lib\": want an absolute path"},
		"uid 0 tenant":  {"{\"tenants\": {\n \"alice\": {\"uids\": [0]}\n}}", ":2: tenant \"alice\": uid 0 is the operator"},
		"dup uid":       {"{\"tenants\": {\n \"alice\": {\"uids\": [5]},\n \"bob\": {\"uids\": [5]}\n}}", ":3: uid 5 is in tenants \"alice\" and \"bob\""},
		"empty tenant":  {"{\"tenants\": {\n \"alice\": {}\n}}", ":2: tenant \"alice\": no uids, gids or certificate names"},
		"tcp without client CA": {"{\"tcp\": {\"address\": \"127.0.0.1:2376\",\n \"cert\": \"/c.pem\", \"key\": \"/k.pem\"}}",
			":1: tcp client_ca \"\": want an absolute path (the TCP listener is mutual TLS only"},
		"tcp without cert": {"{\"tcp\": {\"address\": \"127.0.0.1:2376\", \"client_ca\": \"/ca.pem\"}}", "mutual TLS only"},
		"tcp bad address":  {"{\"tcp\": {\n\"address\": \"2376\"}}", ":2: tcp address \"2376\": want host:port"},
		"dup cert name": {"{\"operator_cert_names\": [\"ops\"], \"tenants\": {\n \"alice\": {\"cert_names\": [\"ops\"]}\n}}",
			":2: certificate name \"ops\" is in \"the operators\" and \"alice\""},
		"metrics is the API socket": {"{\"socket\": \"/run/b.sock\",\n \"metrics_socket\": \"/run/b.sock\"}", ":2: metrics_socket is the API socket"},
		"bad level":                 {"{\n \"log_level\": \"loud\"\n}", ":2: log_level"},
	} {
		t.Run(name, func(t *testing.T) {
			p := write(t, tc.file)
			_, err := Load(p)
			if err == nil || !strings.HasPrefix(err.Error(), p) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %s%s…", err, p, tc.want)
			}
		})
	}
}

func TestLoadAndResolve(t *testing.T) {
	p := write(t, `{
  "socket": "/tmp/b.sock",
  "tenants": {"alice": {"uids": [1000]}, "bob": {"uids": [1001], "gids": [2000]}},
  "operator_gids": [50],
  "limits": {"max_body_bytes": 4096, "idle_timeout": "1m"}
}`)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Limits.MaxBodyBytes != 4096 || c.Limits.IdleTimeout.Minutes() != 1 || c.Limits.ReadTimeout.Seconds() != 30 {
		t.Fatalf("limits: %+v", c.Limits)
	}
	for _, tc := range []struct {
		uid, gid int
		tenant   string
		op       bool
	}{
		{0, 0, "default", true}, {1000, 1000, "alice", false}, {1001, 1, "bob", false},
		{3000, 2000, "bob", false}, {3000, 50, "default", true}, {3000, 3000, "", false},
	} {
		got := c.Resolve(tc.uid, tc.gid)
		if got.Tenant != tc.tenant || got.Operator != tc.op {
			t.Errorf("Resolve(%d, %d) = %+v", tc.uid, tc.gid, got)
		}
	}
	b, err := c.JSON()
	if err != nil || !strings.Contains(string(b), `"idle_timeout": "1m0s"`) {
		t.Fatalf("JSON: %s %v", b, err)
	}
	// What --print-config prints loads back to the same configuration.
	if _, err := Load(write(t, string(b))); err != nil {
		t.Fatalf("printed config does not load: %v", err)
	}
}

func TestResolveCert(t *testing.T) {
	c := Default()
	c.OperatorCertNames = []string{"ops.example"}
	c.Tenants = map[string]Tenant{"alice": {CertNames: []string{"alice"}}, "bob": {UIDs: []int{7}, CertNames: []string{"bob.example"}}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		names  []string
		tenant string
		op     bool
	}{
		{[]string{"alice"}, "alice", false},
		{[]string{"x", "bob.example"}, "bob", false},
		{[]string{"bob.example", "ops.example"}, "default", true},
		{[]string{"alice", "bob.example"}, "", false}, // two tenants: none
		{[]string{"carol"}, "", false},
		{nil, "", false},
	} {
		got := c.ResolveCert(tc.names)
		if got.Tenant != tc.tenant || got.Operator != tc.op || got.UID != -1 {
			t.Errorf("ResolveCert(%q) = %+v", tc.names, got)
		}
	}
}

// TestTenantSyntax: a tenant name is [a-z0-9][a-z0-9-]{0,62}, its length checked apart from the
// alphabet.
func TestTenantSyntax(t *testing.T) {
	for name, want := range map[string]bool{
		"a": true, "a-1": true, strings.Repeat("a", 63): true,
		"": false, strings.Repeat("a", 64): false, "-a": false, "A": false, "a_b": false, "a.b": false,
	} {
		if got := validTenant(name); got != want {
			t.Errorf("validTenant(%q) = %v, want %v", name, got, want)
		}
	}
}
