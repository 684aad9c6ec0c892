package daemon

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// Two tenants on one daemon: both can name a container web; neither sees, reads, signals or
// removes the other's, each refusal is a 403 with its reason code and is audited; a uid of no
// tenant is refused everything but the version handshake; the operator reaches across, on the
// record.
func TestTenantIsolation(t *testing.T) {
	e := startDaemon(t, nil)
	a, b := e.alice, e.bob
	aid := strings.TrimSpace(e.mustDocker(t, a, "run", "-d", "--name", "web", "busybox:1", "sh", "-c", "echo alice-secret; exec sleep 300"))
	bid := strings.TrimSpace(e.mustDocker(t, b, "run", "-d", "--name", "web", "busybox:1", "sleep", "300"))
	waitLogs(t, e, a, "web", "alice-secret")

	if out := e.mustDocker(t, b, "ps", "-a", "--no-trunc", "-q"); strings.TrimSpace(out) != bid {
		t.Errorf("bob's ps -a: %q (want only %s)", out, bid)
	}
	if out := e.mustDocker(t, a, "ps", "-a", "--no-trunc", "-q"); strings.TrimSpace(out) != aid {
		t.Errorf("alice's ps -a: %q (want only %s)", out, aid)
	}
	// web is bob's own container for bob.
	if out := e.mustDocker(t, b, "inspect", "-f", "{{.Id}}", "web"); strings.TrimSpace(out) != bid {
		t.Errorf("bob's web is %q", out)
	}
	before := len(e.auditRecords(t, "daemon", "api.refused"))
	cross := [][]string{
		{"inspect", aid}, {"logs", aid}, {"kill", aid}, {"stop", aid}, {"rm", "-f", aid}, {"wait", aid},
		{"start", aid},
	}
	// Alice's full id is answered to bob exactly as an id that names nothing: a refusal (403)
	// would tell him it exists.
	unknown := randHex(32)
	answer := func(args ...string) string {
		out, err := e.docker(t, b, args...)
		var ce *cliError
		if errors.As(err, &ce) {
			return fmt.Sprintf("exit %d, stdout %q, stderr %q", ce.code(), out, ce.stderr)
		}
		return fmt.Sprintf("%v, stdout %q", err, out)
	}
	for _, args := range cross {
		got := answer(args...)
		uargs := append([]string{}, args...)
		uargs[len(uargs)-1] = unknown
		if want := strings.ReplaceAll(answer(uargs...), unknown, aid); got != want || strings.Contains(got, "alice-secret") {
			t.Errorf("bob: docker %v on alice's id: %s; on an unknown id: %s", args[0], got, want)
		}
	}
	if _, err := e.docker(t, b, "container", "inspect", aid); err == nil || !strings.Contains(err.Error(), "No such container: "+aid) {
		t.Errorf("bob: container inspect of alice's id: %v", err)
	}
	// The same over the raw API: 404 and the same message shape.
	bsock := e.proxyAs(t, b)
	for _, p := range []string{"/containers/%s/json", "/containers/%s/top"} {
		st, body := rawOn(t, bsock, "GET", fmt.Sprintf(p, aid), nil)
		ust, ubody := rawOn(t, bsock, "GET", fmt.Sprintf(p, unknown), nil)
		if st != 404 || ust != 404 || strings.ReplaceAll(ubody, unknown, aid) != body {
			t.Errorf("bob: GET %s: %d %q; unknown id: %d %q", p, st, body, ust, ubody)
		}
	}
	// A prefix of another tenant's id names nothing.
	if _, err := e.docker(t, b, "container", "inspect", aid[:12]); err == nil || !strings.Contains(err.Error(), "No such container") {
		t.Errorf("bob: inspect %s (alice's prefix): %v", aid[:12], err)
	}
	recs := e.auditRecords(t, "daemon", "api.refused")
	if len(recs)-before < len(cross) {
		t.Errorf("%d refusals audited, want at least %d", len(recs)-before, len(cross))
	}
	for _, r := range recs[before:] {
		attrs, _ := r["attrs"].(map[string]any)
		if r["tenant"] != b.name || attrs["owner"] != a.name || !strings.Contains(attrs["codes"].(string), "CROSS_TENANT") {
			t.Errorf("refusal record: %v", r)
		}
	}
	// Alice's container was not touched.
	if out := e.mustDocker(t, a, "inspect", "-f", "{{.State.Status}}", "web"); out != "running\n" {
		t.Errorf("alice's web after bob's attempts: %q", out)
	}
	// A uid mapped to no tenant gets the handshake and nothing else.
	e.mustDocker(t, e.stranger, "version")
	if _, err := e.docker(t, e.stranger, "ps"); err == nil || !strings.Contains(err.Error(), "TENANT_UNKNOWN") {
		t.Errorf("stranger's ps: %v", err)
	}
	if _, err := e.docker(t, e.stranger, "run", "--rm", "busybox:1", "true"); err == nil || !strings.Contains(err.Error(), "TENANT_UNKNOWN") {
		t.Errorf("stranger's run: %v", err)
	}
	// The operator (root) reaches alice's container by id, and that is on the record.
	if out := e.mustDocker(t, tenant{}, "logs", aid); !strings.Contains(out, "alice-secret") {
		t.Errorf("operator's logs: %q", out)
	}
	if len(e.auditRecords(t, "daemon", "api.cross-tenant")) == 0 {
		t.Error("the operator's cross-tenant access was not audited")
	}
	e.mustDocker(t, a, "rm", "-f", "web")
	e.mustDocker(t, b, "rm", "-f", "web")
}
