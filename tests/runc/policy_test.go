package runc

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/policy/policytest"
	"bulwark.dev/bulwark/tests/internal/testenv"
)

// The policy gate: every bulwark-runc create, run and exec is decided by the policy engine on
// the effective spec before anything is created, and each decision is in the audit log under the
// persistent state root.

// policyCLI is a cli with its own persistent state root (audit log, bundle revision).
func policyCLI(t *testing.T) (*cli, *testenv.Leaks, string) {
	c, leaks := newCLI(t)
	return c, leaks, t.TempDir()
}

// auditRecord is the part of an audit record these tests read.
type auditRecord struct {
	Type        string            `json:"type"`
	Action      string            `json:"action"`
	Tenant      string            `json:"tenant"`
	ContainerID string            `json:"container_id"`
	Attrs       map[string]string `json:"attrs"`
}

// decisions returns the policy decisions recorded under stateRoot for container id.
func decisions(t *testing.T, stateRoot, id string) []auditRecord {
	t.Helper()
	return auditRecords(t, stateRoot, func(r auditRecord) bool {
		return r.Type == "policy" && r.Action == "decision" && r.ContainerID == id
	})
}

// auditRecords returns the audit records under stateRoot that match keeps, in order.
func auditRecords(t *testing.T, stateRoot string, keep func(auditRecord) bool) []auditRecord {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(stateRoot, "audit", "audit-*.jsonl"))
	var out []auditRecord
	for _, s := range segs {
		f, err := os.Open(s)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var r auditRecord
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("audit record is not JSON: %v\n%s", err, sc.Bytes())
			}
			if keep(r) {
				out = append(out, r)
			}
		}
		f.Close()
	}
	return out
}

// verifyAudit runs `bulwark audit verify --root stateRoot`.
func verifyAudit(t *testing.T, stateRoot string) {
	t.Helper()
	bin := filepath.Join(filepath.Dir(testenv.RuntimeBin(t)), "bulwark")
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("no bulwark binary beside bulwark-runc (make build): %v", err)
	}
	out, err := exec.Command(bin, "--root", stateRoot, "audit", "verify").CombinedOutput()
	if err != nil {
		t.Errorf("bulwark audit verify --root %s: %v\n%s", stateRoot, err, out)
	}
}

// assertNothingCreated: no container state, and the leak check (mounts, cgroups, processes, id
// ranges) finds nothing either.
func assertNothingCreated(t *testing.T, c *cli, leaks *testenv.Leaks) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(c.root, "containers"))
	if len(ents) != 0 {
		t.Errorf("state left behind: %v", ents)
	}
	leaks.AssertNone(t)
}

func TestPolicyRefusals(t *testing.T) {
	etcLink := func(t *testing.T) string {
		l := filepath.Join(t.TempDir(), "innocent")
		if err := os.Symlink("/etc", l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	bind := func(src string) specs.Mount {
		return specs.Mount{Destination: "/mnt/host", Type: "bind", Source: src, Options: []string{"rbind", "ro"}}
	}
	sharedPid := func(s *specs.Spec) {
		for i, ns := range s.Linux.Namespaces {
			if ns.Type == specs.PIDNamespace {
				s.Linux.Namespaces[i].Path = "/proc/1/ns/pid"
			}
		}
	}
	cases := []struct {
		name string
		spec func(t *testing.T, stateRoot string) *specs.Spec
		// codes are the reason codes expected (stderr, --log, audit); texts more words on stderr
		// and in the log: the request paths the reasons name, the floor's own refusal.
		codes, texts []string
	}{
		{"SYS_ADMIN", func(*testing.T, string) *specs.Spec {
			return testenv.RuncSpec([]string{"/bin/true"}, testenv.WithCaps("CAP_SYS_ADMIN", "CAP_CHOWN"))
		}, []string{"CAP_FORBIDDEN"}, []string{"capability SYS_ADMIN", "capabilities[", "CAP_SYS_ADMIN"}},
		{"host root bind", func(*testing.T, string) *specs.Spec {
			return testenv.RuncSpec([]string{"/bin/true"}, testenv.WithMount(bind("/")))
		}, []string{"MOUNT_HOST_PATH_FORBIDDEN"}, []string{"host path / may not", "].source"}},
		{"symlink to /etc", func(t *testing.T, _ string) *specs.Spec {
			return testenv.RuncSpec([]string{"/bin/true"}, testenv.WithMount(bind(etcLink(t))))
		}, []string{"MOUNT_HOST_PATH_FORBIDDEN"}, []string{"host path /etc may not", "].source"}},
		// Host binds are deny-by-default (issue 8 §7): these were allowed before.
		{"bind of /home", func(*testing.T, string) *specs.Spec {
			return testenv.RuncSpec([]string{"/bin/true"}, testenv.WithMount(bind("/home")))
		}, []string{"MOUNT_HOST_PATH_NOT_ALLOWED"}, []string{"host path /home is not in tenant default's bind_sources", "].source"}},
		{"bind of a symlink to /var/log", func(t *testing.T, _ string) *specs.Spec {
			l := filepath.Join(t.TempDir(), "logs")
			if err := os.Symlink("/var/log", l); err != nil {
				t.Fatal(err)
			}
			return testenv.RuncSpec([]string{"/bin/true"}, testenv.WithMount(bind(l)))
		}, []string{"MOUNT_HOST_PATH_NOT_ALLOWED"}, []string{"host path /var/log is not"}},
		// The --state-root (not the default one) and what is below it are never bound.
		{"bind of the state root", func(_ *testing.T, sr string) *specs.Spec {
			return testenv.RuncSpec([]string{"/bin/true"}, testenv.WithMount(bind(sr)),
				testenv.WithMount(bind(filepath.Join(sr, "audit"))))
		}, []string{"MOUNT_STATE_ROOT"}, []string{"overlaps the runtime's state root"}},
		{"shared pid namespace", func(*testing.T, string) *specs.Spec {
			return testenv.RuncSpec([]string{"/bin/true"}, sharedPid)
		}, []string{"NAMESPACE_SHARED"}, []string{"namespaces.pid", "joining the pid namespace at /proc/1/ns/pid is refused"}},
		// A hostNetwork pod's spec has no network namespace: the host's, refused, never
		// silently moved into a new one (issue 15); likewise pid, ipc and uts.
		{"no network namespace", func(*testing.T, string) *specs.Spec {
			return testenv.RuncSpec([]string{"/bin/true"}, withoutNamespaces(specs.NetworkNamespace))
		}, []string{"NAMESPACE_SHARED"}, []string{"namespaces.network", "no network namespace, which asks for the host's"}},
		{"no pid, ipc or uts namespace", func(*testing.T, string) *specs.Spec {
			return testenv.RuncSpec([]string{"/bin/true"}, withoutNamespaces(specs.PIDNamespace, specs.IPCNamespace, specs.UTSNamespace))
		}, []string{"NAMESPACE_SHARED"}, []string{"namespaces.pid", "namespaces.ipc", "namespaces.uts",
			"no pid namespace", "no ipc namespace", "no uts namespace"}},
		// Every reason at once, not the first one found.
		{"all of them", func(t *testing.T, _ string) *specs.Spec {
			return testenv.RuncSpec([]string{"/bin/true"}, testenv.WithCaps("CAP_SYS_ADMIN"),
				testenv.WithMount(bind("/")), testenv.WithMount(bind(etcLink(t))), sharedPid)
		}, []string{"CAP_FORBIDDEN", "MOUNT_HOST_PATH_FORBIDDEN", "NAMESPACE_SHARED"},
			[]string{"].source", "capabilities[", "namespaces.pid"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, leaks, sr := policyCLI(t)
			bundle := testenv.Bundle(t, tc.spec(t, sr))
			leaks.Dir(bundle)
			for _, cmd := range []string{"create", "run"} {
				id := leaks.Track(testenv.UniqueID(t))
				logPath := filepath.Join(t.TempDir(), "log.json")
				r := c.run("--state-root", sr, "--log", logPath, "--log-format", "json", cmd, "--bundle", bundle, id)
				if r.code != 1 {
					c.run("delete", "--force", id)
					t.Fatalf("%s: exit %d, want 1\nstderr: %s", cmd, r.code, r.stderr)
				}
				logged, _ := os.ReadFile(logPath)
				for _, w := range append(tc.codes, tc.texts...) {
					if !strings.Contains(r.stderr, w) {
						t.Errorf("%s: stderr lacks %q:\n%s", cmd, w, r.stderr)
					}
					if !strings.Contains(string(logged), w) {
						t.Errorf("%s: --log lacks %q:\n%s", cmd, w, logged)
					}
				}
				assertNothingCreated(t, c, leaks)
				ds := decisions(t, sr, id)
				if len(ds) != 1 || ds[0].Attrs["result"] != "deny" || ds[0].Attrs["operation"] != "create" || ds[0].Tenant != "default" {
					t.Fatalf("%s: audited decisions %+v, want one create denial", cmd, ds)
				}
				for _, w := range tc.codes {
					if !strings.Contains(ds[0].Attrs["reason_codes"], w) {
						t.Errorf("%s: audited reason codes %s lack %s", cmd, ds[0].Attrs["reason_codes"], w)
					}
				}
			}
			verifyAudit(t, sr)
		})
	}
}

// TestPolicyAllowsPlainBundle: a plain bundle runs, its decision is audited as an allow, and the
// audit chain verifies.
func TestPolicyAllowsPlainBundle(t *testing.T) {
	c, leaks, sr := policyCLI(t)
	bundle := testenv.Bundle(t, testenv.Spec([]string{"/bin/echo", "allowed"}))
	leaks.Dir(bundle)
	id := leaks.Track(testenv.UniqueID(t))
	if out := c.ok("--state-root", sr, "run", "--bundle", bundle, id); strings.TrimSpace(out) != "allowed" {
		t.Errorf("run printed %q", out)
	}
	ds := decisions(t, sr, id)
	if len(ds) != 1 || ds[0].Attrs["result"] != "allow" || ds[0].Attrs["input_digest"] == "" || ds[0].Attrs["revision"] == "" {
		t.Fatalf("audited decisions %+v, want one allow with digest and revision", ds)
	}
	verifyAudit(t, sr)
}

// TestPolicyExec: exec is decided too; a forbidden capability is refused with its reason and
// nothing runs, a plain exec runs.
func TestPolicyExec(t *testing.T) {
	c, leaks, sr := policyCLI(t)
	bundle := testenv.Bundle(t, sleeper())
	leaks.Dir(bundle)
	id := leaks.Track(testenv.UniqueID(t))
	c.ok("--state-root", sr, "create", "--bundle", bundle, id)
	t.Cleanup(func() { c.run("delete", "--force", id) })
	c.ok("start", id)

	r := c.run("--state-root", sr, "exec", "--cap", "CAP_SYS_ADMIN", id, "/bin/echo", "escaped")
	if r.code != 1 || !strings.Contains(r.stderr, "CAP_FORBIDDEN") || strings.Contains(r.stdout, "escaped") {
		t.Errorf("exec --cap CAP_SYS_ADMIN: %+v", r)
	}
	if out := c.ok("--state-root", sr, "exec", id, "/bin/echo", "fine"); strings.TrimSpace(out) != "fine" {
		t.Errorf("plain exec printed %q", out)
	}
	var ops []string
	for _, d := range decisions(t, sr, id) {
		ops = append(ops, d.Attrs["operation"]+":"+d.Attrs["result"])
	}
	if strings.Join(ops, " ") != "create:allow exec:deny exec:allow" {
		t.Errorf("audited decisions %v", ops)
	}
	verifyAudit(t, sr)
}

// TestPolicyBadDirFailsClosed: a policy that does not compile refuses every create with a clear
// error; nothing is created.
func TestPolicyBadDirFailsClosed(t *testing.T) {
	c, leaks, sr := policyCLI(t)
	pol := t.TempDir()
	if err := os.WriteFile(filepath.Join(pol, "broken.rego"), []byte("package bulwark.run\n\ndecision := {\"allow\": true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bundle := testenv.Bundle(t, testenv.Spec([]string{"/bin/true"}))
	leaks.Dir(bundle)
	id := leaks.Track(testenv.UniqueID(t))
	r := c.run("--state-root", sr, "--policy", pol, "run", "--bundle", bundle, id)
	if r.code != 1 || !strings.Contains(r.stderr, "policy") || !strings.Contains(r.stderr, "broken.rego") {
		t.Errorf("broken policy: exit %d, stderr %q; want exit 1 naming the policy file", r.code, r.stderr)
	}
	assertNothingCreated(t, c, leaks)
	// A missing directory is no better.
	r = c.run("--state-root", sr, "--policy", filepath.Join(pol, "missing"), "run", "--bundle", bundle, id)
	if r.code != 1 || !strings.Contains(r.stderr, "policy") {
		t.Errorf("missing policy dir: exit %d, stderr %q", r.code, r.stderr)
	}
	assertNothingCreated(t, c, leaks)
}

// TestPolicyTenantData: an operator's data file selects tenants and their limits: an unknown
// tenant is refused, an explicit limit above the tenant's maximum is refused, and a spec without
// a limit gets the tenant's maximum (the stricter of request and constraint) in its cgroup.
func TestPolicyTenantData(t *testing.T) {
	c, leaks, sr := policyCLI(t)
	pol := t.TempDir()
	data := `{"bulwark": {"tenants": {"small": {"max_memory": 67108864, "max_pids": 64}}}}`
	if err := os.WriteFile(filepath.Join(pol, "data.json"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	plain := testenv.Bundle(t, sleeper())
	big := testenv.Bundle(t, testenv.Spec([]string{"/bin/true"}, testenv.WithMemoryLimit(1<<30)))
	leaks.Dir(plain)
	leaks.Dir(big)

	id := leaks.Track(testenv.UniqueID(t))
	if r := c.run("--state-root", sr, "--policy", pol, "--tenant", "nobody", "create", "--bundle", plain, id); r.code != 1 || !strings.Contains(r.stderr, "TENANT_UNKNOWN") {
		t.Errorf("unknown tenant: %+v", r)
	}
	if r := c.run("--state-root", sr, "--policy", pol, "--tenant", "small", "create", "--bundle", big, id); r.code != 1 || !strings.Contains(r.stderr, "MEMORY_LIMIT_ABOVE_MAX") {
		t.Errorf("memory above the tenant's maximum: %+v", r)
	}
	assertNothingCreated(t, c, leaks)

	c.ok("--state-root", sr, "--policy", pol, "--tenant", "small", "create", "--bundle", plain, id)
	t.Cleanup(func() { c.run("--tenant", "small", "delete", "--force", id) })
	st := c.state("--tenant", "small", id)
	for ctl, want := range map[string]string{"memory/memory.limit_in_bytes": "67108864", "pids/pids.max": "64"} {
		controller, file, _ := strings.Cut(ctl, "/")
		dir, err := testenv.HostCgroupPath(st.Pid, controller)
		if err != nil {
			t.Fatalf("cgroup of %d: %v", st.Pid, err)
		}
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(b)); got != want {
			t.Errorf("%s = %s, want the tenant's maximum %s", ctl, got, want)
		}
	}
	// The last create was decided twice: denied for the floor's default limits (above the
	// tenant's maximum, which the spec did not ask for), then allowed with the maximum applied.
	var got []string
	for _, d := range decisions(t, sr, id) {
		got = append(got, d.Tenant+":"+d.Attrs["result"])
	}
	if strings.Join(got, " ") != "nobody:deny small:deny small:deny small:allow" {
		t.Errorf("audited decisions %v", got)
	}
}

// TestPolicySignedBundle: a signed bundle decides; its revision is recorded under the persistent
// state root (and audited), so an older signed bundle is refused afterwards, as is an unsigned one.
func TestPolicySignedBundle(t *testing.T) {
	c, leaks, sr := policyCLI(t)
	key := policytest.NewKey(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(keyFile, key.Public, 0o644); err != nil {
		t.Fatal(err)
	}
	// Allows only tenant "bundled": a decision that can only come from this bundle.
	rego := `package bulwark.run

allowed := input.tenant == "bundled"

reasons := [] if allowed

reasons := [{"code": "BUNDLE_SAYS_NO", "message": "no", "path": "tenant"}] if not allowed

decision := {"allow": allowed, "reasons": reasons, "constraints": {}}
`
	write := func(name, rev string, k *policytest.Key) string {
		return policytest.Write(t, filepath.Join(dir, name), policytest.Bundle{Policy: rego, Revision: rev, Key: k, KeyID: "ops",
			Data: map[string]any{"bulwark": map[string]any{"note": "bundled"}}})
	}
	v5, v4, unsigned := write("v5.tar.gz", "5", &key), write("v4.tar.gz", "4", &key), write("u.tar.gz", "6", nil)
	bundle := testenv.Bundle(t, testenv.Spec([]string{"/bin/true"}))
	leaks.Dir(bundle)
	id := leaks.Track(testenv.UniqueID(t))
	pol := func(b string) []string {
		return []string{"--state-root", sr, "--policy-bundle", b, "--policy-key", keyFile}
	}

	c.ok(append(pol(v5), "--tenant", "bundled", "run", "--bundle", bundle, id)...)
	if r := c.run(append(pol(v5), "run", "--bundle", bundle, id)...); r.code != 1 || !strings.Contains(r.stderr, "BUNDLE_SAYS_NO") {
		t.Errorf("tenant default under the bundle: %+v", r)
	}
	rec, err := os.ReadFile(filepath.Join(sr, "policy", "bundle-revision.json"))
	if err != nil || !strings.Contains(string(rec), "5") {
		t.Errorf("accepted revision record: %s (%v)", rec, err)
	}
	for _, tc := range []struct{ bundle, want string }{{v4, "revision 4"}, {unsigned, "signature"}} {
		if r := c.run(append(pol(tc.bundle), "--tenant", "bundled", "run", "--bundle", bundle, id)...); r.code != 1 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want %q", filepath.Base(tc.bundle), r.code, r.stderr, tc.want)
		}
	}
	if r := c.run("--state-root", sr, "--policy-bundle", v5, "run", "--bundle", bundle, id); r.code != 1 || !strings.Contains(r.stderr, "key") {
		t.Errorf("bundle without a key: exit %d, stderr %q", r.code, r.stderr)
	}
	assertNothingCreated(t, c, leaks)
	out, err := exec.Command(filepath.Join(filepath.Dir(testenv.RuntimeBin(t)), "bulwark"), "--root", sr,
		"audit", "query", "--type", "policy").CombinedOutput()
	if err == nil && !strings.Contains(string(out), "bundle-accepted") {
		t.Errorf("no policy.bundle-accepted record:\n%s", out)
	}
	verifyAudit(t, sr)
}

// withoutNamespaces drops the namespaces of the given types from a spec: it asks for the host's.
func withoutNamespaces(types ...specs.LinuxNamespaceType) testenv.SpecOpt {
	return func(s *specs.Spec) {
		s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return slices.Contains(types, n.Type) })
	}
}

// TestPolicyEvaluatorFailsClosed: bulwark-runc links no OPA and has bulwark-policy, beside it,
// decide what its decision cache cannot answer. Without it, or with one that anyone may write,
// every create is refused with the reason and nothing is created.
func TestPolicyEvaluatorFailsClosed(t *testing.T) {
	c, leaks, sr := policyCLI(t)
	bundle := testenv.Bundle(t, testenv.Spec([]string{"/bin/true"}))
	leaks.Dir(bundle)
	c.ok("--state-root", sr, "run", "--bundle", bundle, leaks.Track(testenv.UniqueID(t)))

	dir := t.TempDir()
	for _, name := range []string{"bulwark-runc", "bulwark-init"} {
		data, err := os.ReadFile(filepath.Join(filepath.Dir(c.bin), name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c.bin = filepath.Join(dir, "bulwark-runc")
	id := leaks.Track(testenv.UniqueID(t))
	r := c.run("--state-root", sr, "run", "--bundle", bundle, id)
	if r.code != 1 || !strings.Contains(r.stderr, "policy evaluator") || !strings.Contains(r.stderr, "bulwark-policy") {
		t.Errorf("no evaluator: exit %d, stderr %q; want a refusal naming bulwark-policy", r.code, r.stderr)
	}
	assertNothingCreated(t, c, leaks)

	evaluator := filepath.Join(dir, "bulwark-policy")
	data, err := os.ReadFile(filepath.Join(filepath.Dir(testenv.RuntimeBin(t)), "bulwark-policy"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(evaluator, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(evaluator, 0o777); err != nil {
		t.Fatal(err)
	}
	r = c.run("--state-root", sr, "run", "--bundle", bundle, id)
	if r.code != 1 || !strings.Contains(r.stderr, "no one else may write") {
		t.Errorf("evaluator writable by anyone: exit %d, stderr %q; want a refusal", r.code, r.stderr)
	}
	assertNothingCreated(t, c, leaks)
	if ds := decisions(t, sr, id); len(ds) != 0 {
		t.Errorf("decisions recorded without an evaluator: %+v", ds)
	}
}
