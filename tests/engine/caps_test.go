package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bulwark.dev/bulwark/tests/internal/clitest"
)

// capEff runs `grep CapEff` in a container with the given run flags and returns the hex mask.
func capEff(t *testing.T, f *fixture, flags ...string) string {
	t.Helper()
	args := append(append([]string{"run", "--rm", "--name", f.name(t, "caps")}, flags...), "busybox:1", "sh", "-c", "grep CapEff /proc/self/status")
	out := clitest.Must(t, f.root, args...)
	return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(out), "CapEff:"))
}

// TestRunDefaultCapabilities: bulwark run asks for Docker's default set as docker run does, and
// the floor keeps its grantable part (CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID,
// SETUID, NET_BIND_SERVICE = 0x4fb), as `docker run --runtime bulwark` keeps: a root workload
// can chown (stock nginx's start failed with EPERM). --cap-drop takes Docker's syntax (any case,
// with or without CAP_, ALL for none); a default the tenant is not granted is dropped, not denied.
func TestRunDefaultCapabilities(t *testing.T) {
	f := newFixture(t)
	if got := capEff(t, f); got != "00000000000004fb" {
		t.Errorf("default CapEff %s, want 00000000000004fb", got)
	}
	clitest.Must(t, f.root, "run", "--rm", "--name", f.name(t, "chown"), "busybox:1", "sh", "-c", "touch /tmp/f && chown 65534:65534 /tmp/f")
	if got := capEff(t, f, "--cap-drop", "ALL"); got != "0000000000000000" {
		t.Errorf("--cap-drop ALL: CapEff %s", got)
	}
	if got := capEff(t, f, "--cap-drop", "chown", "--cap-drop", "CAP_Kill"); got != "00000000000004da" {
		t.Errorf("--cap-drop chown, CAP_Kill: CapEff %s, want 00000000000004da", got)
	}
	if got := capEff(t, f, "--cap-drop", "all", "--cap-add", "net_bind_service"); got != "0000000000000400" {
		t.Errorf("--cap-drop all --cap-add net_bind_service: CapEff %s", got)
	}
	r := clitest.Run(t, f.root, "run", "--rm", "--name", f.name(t, "typo"), "--cap-drop", "CHOWNN", "busybox:1", "true")
	if r.Code != 125 || !strings.Contains(r.Stderr, "unknown capability") {
		t.Errorf("--cap-drop CHOWNN: exit %d %s", r.Code, r.Stderr)
	}
	r = clitest.Run(t, f.root, "run", "--rm", "--name", f.name(t, "chown-dropped"), "--cap-drop", "ALL", "busybox:1", "sh", "-c", "touch /tmp/f && chown 65534 /tmp/f")
	if r.Code == 0 {
		t.Error("chown succeeded with --cap-drop ALL")
	}

	// A tenant granted only CHOWN: the other defaults are dropped (and recorded), the run goes on.
	pol := filepath.Join(f.dir, "policy")
	os.MkdirAll(pol, 0o755)
	os.WriteFile(filepath.Join(pol, "data.json"), []byte(`{"bulwark": {"defaults": {"grantable_capabilities": ["CHOWN"],
		"max_memory": 8589934592, "max_pids": 4096, "writable_bind_sources": []}, "tenants": {"default": {}}}}`), 0o644)
	id := f.name(t, "narrow")
	out := clitest.Must(t, f.root, "run", "--rm", "--policy-dir", pol, "--name", id, "busybox:1", "sh", "-c", "grep CapEff /proc/self/status")
	if !strings.Contains(out, "0000000000000001") {
		t.Errorf("tenant granted CHOWN: %s", out)
	}
	c := find(f.records(t, id), "policy", "constraints")
	if !strings.Contains(attr(c, "raises"), "not granted to the tenant") || !strings.Contains(attr(c, "raises"), "CAP_KILL") {
		t.Errorf("constraints record: %v", c)
	}
	f.assertNothingLeft(t)
}
