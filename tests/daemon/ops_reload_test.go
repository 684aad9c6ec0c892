package daemon

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

// hupAndWait sends SIGHUP and waits until the audit log holds n daemon records of action.
func (e *daemonEnv) hupAndWait(t *testing.T, action string, n int) map[string]any {
	t.Helper()
	if err := e.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	return e.waitAudit(t, "daemon", action, n)
}

// pingOn sends GET /_ping on an open connection and reads the answer.
func pingOn(t *testing.T, c net.Conn, br *bufio.Reader) {
	t.Helper()
	if _, err := io.WriteString(c, "GET /_ping HTTP/1.1\r\nHost: bulwarkd\r\n\r\n"); err != nil {
		t.Fatalf("ping on the open connection: %v", err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("ping on the open connection: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "OK" {
		t.Fatalf("ping on the open connection: %d %q", resp.StatusCode, b)
	}
}

// SIGHUP reloads the API policy, the run policy and the tenant map without dropping a
// connection: a tenant's data changed in each is decided on at once; a policy that does not load
// leaves the previous one in force and is logged and audited (daemon reload.failed); a good
// reload is audited (daemon reload).
func TestReload(t *testing.T) {
	e := startDaemon(t, nil)
	a, b, carol := e.alice, e.bob, e.stranger
	apiDir := filepath.Join(e.dir, "api-policy")
	if err := os.Mkdir(apiDir, 0o700); err != nil {
		t.Fatal(err)
	}
	apiData := filepath.Join(apiDir, "data.json")
	testenv.WriteJSON(t, apiData, map[string]any{"bulwark": map[string]any{"api_tenants": map[string]any{}}})
	e.term(t)
	editJSON(t, e.cfgPath, func(cfg map[string]any) { cfg["api_policy_dir"] = apiDir })
	e.start(t)

	c, err := net.Dial("unix", e.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	pingOn(t, c, br)
	e.mustDocker(t, a, "ps")
	e.mustDocker(t, b, "run", "--rm", "busybox:1", "true")
	if _, err := e.docker(t, carol, "ps"); err == nil || !strings.Contains(err.Error(), "TENANT_UNKNOWN") {
		t.Fatalf("uid %d in no tenant: %v", carol.uid, err)
	}

	// The API policy's data: alice may no longer list. The run policy's data: bob's tenant is
	// gone. The tenant map: carol's uid becomes a tenant.
	testenv.WriteJSON(t, apiData, map[string]any{"bulwark": map[string]any{"api_tenants": map[string]any{
		a.name: map[string]any{"denied_operations": []string{"container.list"}}}}})
	runData := filepath.Join(e.dir, "policy", "data.json")
	editJSON(t, runData, func(d map[string]any) {
		delete(d["bulwark"].(map[string]any)["tenants"].(map[string]any), b.name)
	})
	editJSON(t, e.cfgPath, func(cfg map[string]any) {
		cfg["tenants"].(map[string]any)["carol-"+a.name[len("alice-"):]] = map[string]any{"uids": []int{carol.uid}}
	})
	rec := e.hupAndWait(t, "reload", 1)
	if attrs, _ := rec["attrs"].(map[string]any); attrs["api_policy"] != apiDir || attrs["tenants"] != "3" || attrs["run_policy_revision"] == "" {
		t.Errorf("daemon reload audit record: %v", rec)
	}
	if _, err := e.docker(t, a, "ps"); err == nil || !strings.Contains(err.Error(), "OPERATION_NOT_GRANTED") {
		t.Errorf("alice's ps after the API policy's reload: %v", err)
	}
	if _, err := e.docker(t, b, "run", "--rm", "busybox:1", "true"); err == nil || !strings.Contains(err.Error(), "TENANT_UNKNOWN") {
		t.Errorf("bob's run after the run policy's reload: %v", err)
	}
	e.mustDocker(t, carol, "ps")
	pingOn(t, c, br)

	// A policy that does not load: the previous one stays, and the failure is on the record.
	if err := os.WriteFile(apiData, []byte(`{"bulwark": `), 0o600); err != nil {
		t.Fatal(err)
	}
	editJSON(t, e.cfgPath, func(cfg map[string]any) { delete(cfg["tenants"].(map[string]any), a.name) })
	rec = e.hupAndWait(t, "reload.failed", 1)
	if attrs, _ := rec["attrs"].(map[string]any); !strings.Contains(attrs["error"].(string), "API policy") {
		t.Errorf("daemon reload.failed audit record: %v", rec)
	}
	if _, err := e.docker(t, a, "ps"); err == nil || !strings.Contains(err.Error(), "OPERATION_NOT_GRANTED") {
		t.Errorf("alice's ps after a failed reload (the previous API policy and tenant map stay): %v", err)
	}
	e.mustDocker(t, carol, "ps")
	if !strings.Contains(e.log.String(), "reload failed") {
		t.Errorf("the failed reload is not in the log")
	}
	pingOn(t, c, br)
}

func editJSON(t *testing.T, p string, change func(map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	change(v)
	testenv.WriteJSON(t, p, v)
}
