package runc

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/sandbox"
	"bulwark.dev/bulwark/tests/internal/testenv"
)

// tenantsPolicy writes a policy directory whose data knows the tenants alice and bob.
func tenantsPolicy(t *testing.T) string {
	t.Helper()
	pol := t.TempDir()
	data := `{"bulwark": {"tenants": {"alice": {"max_memory": 1073741824, "max_pids": 1024}, "bob": {"max_memory": 1073741824, "max_pids": 1024}}}}`
	if err := os.WriteFile(filepath.Join(pol, "data.json"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return pol
}

// TestTenantCannotDriveAnothersContainer is the regression for issue 8 §2: `--tenant bob` could
// exec (as root, decided under alice's policy), kill, pause, resume, start, delete --force and
// read the state of alice's container, and list showed every tenant's. Now every operation on
// alice's container by bob gets exactly what an operation on a missing container gets (exit code,
// stdout and stderr byte for byte, the id aside), alice's container is untouched, each refusal is
// in the audit log, and each tenant lists only its own.
func TestTenantCannotDriveAnothersContainer(t *testing.T) {
	c, leaks := newCLI(t)
	sr := t.TempDir()
	pol := tenantsPolicy(t)
	// --log sends errors to a file and stderr gets the bare message (as containerd's shim runs
	// it), so the two answers can be compared byte for byte.
	logf := filepath.Join(t.TempDir(), "log.json")
	as := func(tenant string, args ...string) []string {
		return append([]string{"--state-root", sr, "--policy", pol, "--log", logf, "--tenant", tenant}, args...)
	}
	bundle := testenv.Bundle(t, sleeper())
	leaks.Dir(bundle)
	base := testenv.UniqueID(t)
	alices, bobs, missing := leaks.Track(base+"-a"), leaks.Track(base+"-b"), base+"-m"

	c.ok(as("alice", "create", "--bundle", bundle, alices)...)
	t.Cleanup(func() { c.run(as("alice", "delete", "--force", alices)...) })
	c.ok(as("alice", "start", alices)...)
	c.waitStatus(alices, specs.StateRunning, as("alice")...)
	c.ok(as("bob", "create", "--bundle", bundle, bobs)...)
	t.Cleanup(func() { c.run(as("bob", "delete", "--force", bobs)...) })
	before := c.state(as("alice", alices)...)

	ops := [][]string{
		{"state"}, {"ps"}, {"ps", "--format", "json"}, {"exec", "{}", "/bin/echo", "pwned"},
		{"exec", "--user", "0", "{}", "/bin/id"}, {"pause"}, {"resume"}, {"start"},
		{"kill", "{}", "KILL"}, {"kill", "--all", "{}", "9"}, {"delete"}, {"delete", "--force"},
	}
	var wantOps []string
	for _, op := range ops {
		args := func(id string) []string {
			out := slices.Clone(op)
			if i := slices.Index(out, "{}"); i >= 0 {
				out[i] = id
			} else {
				out = append(out, id)
			}
			return as("bob", out...)
		}
		foreign, absent := c.run(args(alices)...), c.run(args(missing)...)
		norm := func(s, id string) string { return strings.ReplaceAll(s, id, "ID") }
		if foreign.code != absent.code || norm(foreign.stdout, alices) != norm(absent.stdout, missing) ||
			norm(foreign.stderr, alices) != norm(absent.stderr, missing) {
			t.Errorf("bob %v on alice's container: exit %d, stdout %q, stderr %q\n"+
				"on a missing container: exit %d, stdout %q, stderr %q",
				op, foreign.code, foreign.stdout, foreign.stderr, absent.code, absent.stdout, absent.stderr)
		}
		wantOps = append(wantOps, op[0])
	}

	// alice's container still runs, the same init, unfrozen, and alice still drives it.
	if after := c.state(as("alice", alices)...); after.Status != specs.StateRunning || after.Pid != before.Pid {
		t.Errorf("alice's container after bob's attempts: %s pid %d, was %s pid %d", after.Status, after.Pid, before.Status, before.Pid)
	}
	if out := c.ok(as("alice", "exec", alices, "/bin/echo", "mine")...); strings.TrimSpace(out) != "mine" {
		t.Errorf("alice's exec = %q", out)
	}

	// Lists: each tenant sees its own; the default tenant (containerd, Docker) sees neither.
	for tenant, want := range map[string]string{"alice": alices, "bob": bobs, "default": ""} {
		if out := strings.TrimSpace(c.ok(as(tenant, "list", "-q")...)); out != want {
			t.Errorf("%s: list -q = %q, want %q", tenant, out, want)
		}
		var states []sandbox.State
		if err := json.Unmarshal([]byte(c.ok(as(tenant, "list", "--format", "json")...)), &states); err != nil {
			t.Fatal(err)
		}
		for _, st := range states {
			if st.ID != want || st.Tenant != tenant {
				t.Errorf("%s: list --format json shows %s of tenant %s", tenant, st.ID, st.Tenant)
			}
		}
	}

	// Each refusal is audited: bob's tenant, alice's container, the operation; a missing
	// container leaves no such record.
	var gotOps []string
	for _, r := range auditRecords(t, sr, func(r auditRecord) bool { return r.Action == sandbox.EventAccessRefused }) {
		if r.Tenant != "bob" || r.ContainerID != alices || r.Attrs["owner"] != "alice" {
			t.Errorf("refusal record: %+v", r)
		}
		gotOps = append(gotOps, r.Attrs["operation"])
	}
	if strings.Join(gotOps, " ") != strings.Join(wantOps, " ") {
		t.Errorf("audited refusals %v, want one per operation %v", gotOps, wantOps)
	}
	verifyAudit(t, sr)

	c.ok(as("alice", "delete", "--force", alices)...)
	c.ok(as("bob", "delete", "--force", bobs)...)
}
