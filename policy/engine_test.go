package policy

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func writePolicyDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func allowedRequest(t *testing.T) *Request {
	t.Helper()
	c, doc := loadCase(t, "testdata/corpus/allow_minimal.json")
	if !c.Want.Allow {
		t.Fatal("allow_minimal is not an allow case")
	}
	req, err := ParseRequest(doc)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestMalformedPolicyRefused(t *testing.T) {
	dir := writePolicyDir(t, map[string]string{"p.rego": "package bulwark.run\n\ndecision := {\n"})
	if _, err := LoadDir(dir); err == nil || !strings.Contains(err.Error(), "p.rego") {
		t.Fatalf("LoadDir of a policy with a syntax error: %v", err)
	}
}

func TestPolicyThatFailsToCompileRefused(t *testing.T) {
	for name, src := range map[string]string{
		"unsafe var":      "package bulwark.run\n\ndecision := x if { x == 1 }\n",
		"unknown builtin": "package bulwark.run\n\ndecision := no_such_builtin(1)\n",
		"no decision":     "package bulwark.run\n\nallow := true\n",
	} {
		t.Run(name, func(t *testing.T) {
			p, err := LoadDir(writePolicyDir(t, map[string]string{"p.rego": src}))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := NewEngine(context.Background(), p); err == nil {
				t.Fatal("NewEngine accepted a policy that cannot decide")
			}
		})
	}
}

func TestUndefinedOrFailingPolicyDenies(t *testing.T) {
	for name, tc := range map[string]struct{ src, code string }{
		"undefined":      {"package bulwark.run\n\ndecision := {\"allow\": true, \"reasons\": []} if input.tenant == \"nobody-has-this\"\n", CodePolicyUndefined},
		"runtime error":  {"package bulwark.run\n\ndecision := {\"allow\": true, \"reasons\": [], \"x\": 1 / count(input.capabilities) - 1 / 0}\n", CodePolicyError},
		"wrong shape":    {"package bulwark.run\n\ndecision := {\"allow\": \"yes\", \"reasons\": []}\n", CodePolicyError},
		"contradictory":  {"package bulwark.run\n\ndecision := {\"allow\": true, \"reasons\": [{\"code\": \"X\", \"message\": \"m\", \"path\": \"\"}]}\n", "X"},
		"reason no code": {"package bulwark.run\n\ndecision := {\"allow\": true, \"reasons\": [{\"message\": \"m\"}]}\n", CodePolicyError},
	} {
		t.Run(name, func(t *testing.T) {
			p, err := LoadDir(writePolicyDir(t, map[string]string{"p.rego": tc.src}))
			if err != nil {
				t.Fatal(err)
			}
			e := mustPrepare(t, p)
			d := e.Decide(context.Background(), allowedRequest(t))
			if d.Allow || len(d.Reasons) == 0 || d.Reasons[0].Code != tc.code {
				t.Fatalf("decision %+v, want deny with %s", d, tc.code)
			}
		})
	}
}

func TestRequestMissingFieldsDenied(t *testing.T) {
	e := testEngine(t)
	d := e.DecideDocument(context.Background(), []byte(`{"apiVersion": "bulwark.dev/run/v1", "tenant": "acme"}`))
	if d.Allow || d.Reasons[0].Code != CodeRequestInvalid || d.Reasons[0].Path != "identity" ||
		!strings.Contains(d.Reasons[0].Message, "required field is missing") {
		t.Fatalf("decision %+v", d)
	}
	if d := e.DecideDocument(context.Background(), []byte(`not json`)); d.Allow || d.Reasons[0].Code != CodeRequestInvalid {
		t.Fatalf("decision %+v", d)
	}
	// A Request built by hand without the fields policy keys on.
	if d := e.Decide(context.Background(), &Request{APIVersion: APIVersion}); d.Allow || d.Reasons[0].Path != "tenant" {
		t.Fatalf("decision %+v", d)
	}
	if d := e.Decide(context.Background(), nil); d.Allow {
		t.Fatalf("nil request allowed: %+v", d)
	}
}

type recorderFunc func(DecisionRecord)

func (f recorderFunc) RecordDecision(r DecisionRecord) { f(r) }

func TestRecorderGetsEveryDecision(t *testing.T) {
	var got []DecisionRecord
	e := testEngine(t, WithRecorder(recorderFunc(func(r DecisionRecord) { got = append(got, r) })))
	req := allowedRequest(t)
	e.Decide(context.Background(), req)
	e.DecideDocument(context.Background(), []byte(`{}`))
	if len(got) != 2 || !got[0].Allow || got[1].Allow {
		t.Fatalf("records %+v", got)
	}
	if got[0].InputDigest != InputDigest(req) || !strings.HasPrefix(got[1].InputDigest, "sha256:") ||
		got[0].Revision == "" || got[0].Tenant != "acme" || got[0].Duration <= 0 {
		t.Fatalf("records %+v", got)
	}
}

func TestBuildFromSpec(t *testing.T) {
	tmp := t.TempDir()
	if err := os.Symlink("/etc", filepath.Join(tmp, "cfg")); err != nil {
		t.Fatal(err)
	}
	mem, pids := int64(64<<20), int64(64)
	spec := &specs.Spec{
		Process: &specs.Process{
			Args: []string{"/bin/true"}, Cwd: "/", NoNewPrivileges: true,
			Env:          []string{"PATH=/bin", "API_TOKEN=hunter2"},
			Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN"}, Effective: []string{"CAP_CHOWN", "CAP_KILL"}},
		},
		Root:   &specs.Root{Path: "rootfs", Readonly: true},
		Mounts: []specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc"}},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: "pid"}, {Type: "network"}, {Type: "ipc"}, {Type: "uts"}, {Type: "mount"}, {Type: "user"}, {Type: "cgroup"}},
			Seccomp:    &specs.LinuxSeccomp{DefaultAction: specs.ActErrno},
			Resources:  &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &mem}, Pids: &specs.LinuxPids{Limit: &pids}},
		},
	}
	ctx := Context{Tenant: "acme", Operation: OpCreate, StateRoot: "/var/lib/bulwark", SeccompProfile: "default", MACLayer: "landlock"}
	req, err := Build(spec, ctx)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(InputDigest(req), "hunter2") || strings.Join(req.Process.Env, ",") != "PATH,API_TOKEN" {
		t.Fatalf("env = %v", req.Process.Env)
	}
	if strings.Join(req.Capabilities, ",") != "CHOWN,KILL" {
		t.Fatalf("caps = %v", req.Capabilities)
	}
	e := testEngine(t)
	if d := e.Decide(context.Background(), req); !d.Allow {
		t.Fatalf("plain spec denied: %+v", d.Reasons)
	}

	// A bind of a symlink to /etc is judged as /etc; relative sources resolve in the bundle.
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: "cfg", Options: []string{"rbind", "ro"}})
	ctx.BundleDir = tmp
	req, err = Build(spec, ctx)
	if err != nil {
		t.Fatal(err)
	}
	if req.Mounts[1].Source != "/etc" || !req.Mounts[1].Bind || !req.Mounts[1].ReadOnly {
		t.Fatalf("mount = %+v", req.Mounts[1])
	}
	d := e.Decide(context.Background(), req)
	if d.Allow || d.Reasons[0].Code != "MOUNT_HOST_PATH_FORBIDDEN" || d.Reasons[0].Path != "mounts[1].source" {
		t.Fatalf("decision %+v", d)
	}

	// Namespaces left out of the spec are the host's.
	spec.Mounts = spec.Mounts[:1]
	spec.Linux.Namespaces = spec.Linux.Namespaces[1:]
	req, _ = Build(spec, ctx)
	if req.Network.Mode != "private" || !req.Namespaces["pid"].Shared || req.Namespaces["ipc"].Shared {
		t.Fatalf("namespaces = %+v", req.Namespaces)
	}
	if d := e.Decide(context.Background(), req); d.Allow || d.Reasons[0].Code != "NAMESPACE_SHARED" {
		t.Fatalf("decision %+v", d)
	}
	if _, err := Build(&specs.Spec{Linux: &specs.Linux{}}, ctx); err == nil {
		t.Fatal("Build accepted a spec without a process")
	}
}

func TestResolveHostPath(t *testing.T) {
	tmp, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(tmp, "a/b"), 0o755))
	must(os.Symlink("/usr/share", filepath.Join(tmp, "share")))
	must(os.Symlink("a/b", filepath.Join(tmp, "rel")))
	must(os.Symlink("loop2", filepath.Join(tmp, "loop1")))
	must(os.Symlink("loop1", filepath.Join(tmp, "loop2")))
	must(os.Symlink(filepath.Join(tmp, "nothing"), filepath.Join(tmp, "dangling")))
	for in, want := range map[string]string{
		"/":                                  "/",
		"/../../etc/./passwd":                "/etc/passwd",
		tmp + "/share/../../etc":             "/etc",
		tmp + "/rel/../b/missing/../x":       tmp + "/a/b/x",
		tmp + "/a/not-yet/file":              tmp + "/a/not-yet/file",
		tmp + "//a///b/":                     tmp + "/a/b",
		tmp + "/rel/../../share/../../../..": "/",
	} {
		got, err := ResolveHostPath(in)
		if err != nil || got != want {
			t.Errorf("ResolveHostPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"relative/path", tmp + "/loop1", tmp + "/dangling", tmp + "/dangling/x"} {
		if got, err := ResolveHostPath(in); err == nil {
			t.Errorf("ResolveHostPath(%q) = %q, want an error", in, got)
		}
	}
}

func TestConstraintsApplyStricter(t *testing.T) {
	i := func(v int64) *int64 { return &v }
	c := Constraints{MaxMemory: i(100), MaxPids: i(10)}
	for _, tc := range []struct {
		name           string
		in             *specs.LinuxResources
		wantMem, wantP int64
	}{
		{"unset", nil, 100, 10},
		{"looser", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i(500)}, Pids: &specs.LinuxPids{Limit: i(-1)}}, 100, 10},
		{"stricter", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i(50)}, Pids: &specs.LinuxPids{Limit: i(5)}}, 50, 5},
	} {
		out := c.Apply(tc.in)
		if *out.Memory.Limit != tc.wantMem || *out.Pids.Limit != tc.wantP {
			t.Errorf("%s: got mem %d pids %d", tc.name, *out.Memory.Limit, *out.Pids.Limit)
		}
	}
	in := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i(500)}}
	_ = c.Apply(in)
	if *in.Memory.Limit != 500 {
		t.Error("Apply modified its input")
	}
	if out := (Constraints{}).Apply(in); *out.Memory.Limit != 500 || out.Pids != nil {
		t.Error("empty constraints changed the request")
	}
	// The default policy returns the tenant's maxima as constraints.
	d := testEngine(t).Decide(context.Background(), allowedRequest(t))
	if d.Constraints.MaxMemory == nil || *d.Constraints.MaxMemory != 1<<30 || *d.Constraints.MaxPids != 512 {
		t.Fatalf("constraints %+v", d.Constraints)
	}
}

func TestEmbeddedPolicyRefusesUnknownTenantByDefault(t *testing.T) {
	p, err := LoadEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	e := mustPrepare(t, p)
	req := allowedRequest(t)
	if d := e.Decide(context.Background(), req); d.Allow || d.Reasons[0].Code != "TENANT_UNKNOWN" {
		t.Fatalf("decision %+v", d)
	}
	req.Tenant = "default"
	if d := e.Decide(context.Background(), req); !d.Allow {
		t.Fatalf("default tenant denied: %+v", d.Reasons)
	}
	if e.Info().Source != SourceEmbedded || !strings.HasPrefix(e.Info().Revision, "sha256:") {
		t.Fatalf("info %+v", e.Info())
	}
}

func TestDecideSpecAndDeniedError(t *testing.T) {
	e := testEngine(t)
	spec := &specs.Spec{
		Process: &specs.Process{Args: []string{"/bin/true"}, Cwd: "/", NoNewPrivileges: true,
			Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_SYS_ADMIN"}}},
		Root:  &specs.Root{Path: "rootfs"},
		Linux: &specs.Linux{},
	}
	d := e.DecideSpec(context.Background(), spec, Context{Tenant: "acme", Operation: OpRun, StateRoot: "/var/lib/bulwark"})
	err := d.Err()
	var de *DeniedError
	if !errors.As(err, &de) {
		t.Fatalf("Err() = %v", err)
	}
	for _, want := range []string{"CAP_FORBIDDEN: capability SYS_ADMIN is never granted [capabilities[0]]", "NAMESPACE_SHARED", "ROOTFS_WRITABLE", "SECCOMP_UNCONFINED", "MEMORY_LIMIT_MISSING"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%s", want, err)
		}
	}
	if d := e.DecideSpec(context.Background(), &specs.Spec{}, Context{Tenant: "acme", Operation: OpRun}); d.Allow || d.Reasons[0].Code != CodeRequestInvalid {
		t.Fatalf("spec without linux section: %+v", d)
	}
	if (Decision{Allow: true}).Err() != nil {
		t.Fatal("allowed decision has an error")
	}
}

func TestConcurrentDecisions(t *testing.T) {
	e := testEngine(t)
	req := allowedRequest(t)
	deny := allowedRequest(t)
	deny.Privileged = true
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if d := e.Decide(context.Background(), req); !d.Allow {
					t.Errorf("goroutine %d: allowed request denied: %+v", i, d.Reasons)
					return
				}
				if d := e.Decide(context.Background(), deny); d.Allow {
					t.Errorf("goroutine %d: privileged request allowed", i)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestDataOnlyDirectoryYAML(t *testing.T) {
	dir := writePolicyDir(t, map[string]string{"data.yaml": `
bulwark:
  defaults: {max_memory: 1073741824, max_pids: 100, grantable_capabilities: [CHOWN], writable_bind_sources: []}
  tenants:
    yaml-tenant: {}
`})
	p, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := mustPrepare(t, p)
	req := allowedRequest(t)
	req.Tenant = "yaml-tenant"
	d := e.Decide(context.Background(), req)
	codes := map[string]bool{}
	for _, r := range d.Reasons {
		codes[r.Code] = true
	}
	// The embedded rules apply with the directory's data: KILL is not granted, pids 128 > 100.
	if d.Allow || !codes["CAP_NOT_GRANTED"] || !codes["PIDS_LIMIT_ABOVE_MAX"] || len(codes) != 2 {
		t.Fatalf("decision %+v", d)
	}
	if e.Info().Source != SourceDirectory || e.Info().Location != dir {
		t.Fatalf("info %+v", e.Info())
	}
}

func TestLogRecorderLine(t *testing.T) {
	var buf strings.Builder
	e := testEngine(t, WithRecorder(NewLogRecorder(&buf)))
	req := allowedRequest(t)
	req.Privileged = true
	e.Decide(context.Background(), req)
	var line map[string]any
	if err := json.Unmarshal([]byte(buf.String()), &line); err != nil {
		t.Fatalf("not one JSON line: %q", buf.String())
	}
	if line["msg"] != "policy decision" || line["allow"] != false || line["tenant"] != "acme" ||
		!strings.HasPrefix(line["input_digest"].(string), "sha256:") || line["revision"] == "" {
		t.Fatalf("log line %v", line)
	}
	if r, _ := line["reasons"].([]any); len(r) != 1 || r[0] != "PRIVILEGED" {
		t.Fatalf("reasons %v", line["reasons"])
	}
}

// TestRuncDefaultSpec builds the document from `runc spec` output (runc 1.1.5, as a stand-in
// for a spec the floor has not raised yet): it validates against the schema, and the policy
// names what the floor must still add.
func TestRuncDefaultSpec(t *testing.T) {
	raw, err := os.ReadFile("testdata/runc-default-spec.json")
	if err != nil {
		t.Fatal(err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	req, err := Build(&spec, Context{Tenant: "acme", Operation: OpCreate, StateRoot: "/var/lib/bulwark", BundleDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(doc); err != nil {
		t.Fatalf("document built from runc's spec fails the schema: %v", err)
	}
	if strings.Contains(string(doc), "xterm") {
		t.Fatal("an env value reached the document")
	}
	d := testEngine(t).Decide(context.Background(), req)
	got := map[string]bool{}
	for _, r := range d.Reasons {
		got[r.Code+" "+r.Path] = true
	}
	for _, want := range []string{
		"NAMESPACE_SHARED namespaces.user", "NAMESPACE_SHARED namespaces.cgroup", "SECCOMP_UNCONFINED seccomp.profile",
		"MEMORY_LIMIT_MISSING resources.memoryLimit", "PIDS_LIMIT_MISSING resources.pidsLimit",
		"CAP_NOT_GRANTED capabilities[0]", // AUDIT_WRITE: below the ceiling, not granted to acme
	} {
		if !got[want] {
			t.Errorf("missing reason %q in %v", want, d.Reasons)
		}
	}
	if d.Allow || len(d.Reasons) != 6 {
		t.Errorf("decision %+v", d)
	}
}
