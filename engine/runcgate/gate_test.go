package runcgate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/policy"
	"bulwark.dev/bulwark/sandbox"
)

// runcGate sets up a sandbox runtime (used only for its floor, a dry run) and a persistent state
// root in temp dirs.
func runcGate(t *testing.T) (*sandbox.Runtime, string, string) {
	t.Helper()
	runRoot := t.TempDir()
	rt, err := sandbox.New(sandbox.Options{Root: runRoot})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Floor(runcSpec()); err != nil {
		t.Skipf("the floor refuses a plain spec on this host: %v", err)
	}
	return rt, runRoot, t.TempDir()
}

func runcSpec() *specs.Spec {
	return &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{Args: []string{"/bin/true"}, Cwd: "/"},
		Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.MountNamespace},
			{Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace}}},
	}
}

func runcRecords(t *testing.T, stateRoot string) []audit.Record {
	t.Helper()
	recs, err := audit.Query(filepath.Join(stateRoot, "audit"), audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Verify(filepath.Join(stateRoot, "audit"), nil); err != nil {
		t.Fatalf("audit chain: %v", err)
	}
	return recs
}

// Everything the floor refuses outright is still shown to policy, so the refusal names every
// reason, and the floor's own refusal follows them.
func TestDecideEveryReason(t *testing.T) {
	rt, runRoot, sr := runcGate(t)
	link := filepath.Join(t.TempDir(), "conf")
	if err := os.Symlink("/etc", link); err != nil {
		t.Fatal(err)
	}
	spec := runcSpec()
	spec.Process.Capabilities = &specs.LinuxCapabilities{Effective: []string{"CAP_SYS_ADMIN"}} // one set only
	spec.Linux.Namespaces[0].Path = "/proc/1/ns/pid"
	spec.Linux.Sysctl = map[string]string{"kernel.hostname": "x"}
	spec.Mounts = []specs.Mount{{Destination: "/c", Type: "bind", Source: link, Options: []string{"rbind"}}}
	_, err := Decide(context.Background(), Config{Evaluator: inProcess(t), StateRoot: sr, UID: 1234}, rt,
		Request{Operation: policy.OpCreate, Tenant: "default", ContainerID: "c1", Bundle: t.TempDir(), Spec: spec})
	var denied *policy.DeniedError
	if !errors.As(err, &denied) {
		t.Fatalf("err = %v, want a policy denial", err)
	}
	codes := map[string]string{}
	for _, r := range denied.Decision.Reasons {
		codes[r.Code] = r.Message
	}
	for _, want := range []string{"CAP_FORBIDDEN", "NAMESPACE_SHARED", "MOUNT_HOST_PATH_FORBIDDEN", "SYSCTL_NOT_ALLOWED"} {
		if _, ok := codes[want]; !ok {
			t.Errorf("reasons %v lack %s", denied.Decision.Reasons, want)
		}
	}
	if !strings.Contains(codes["MOUNT_HOST_PATH_FORBIDDEN"], "/etc") {
		t.Errorf("the bind was judged by its spelling, not its target: %q", codes["MOUNT_HOST_PATH_FORBIDDEN"])
	}
	if !errors.Is(err, sandbox.ErrFloor) {
		t.Errorf("the floor's refusal is not part of the error: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(runRoot, "containers")); len(ents) != 0 {
		t.Errorf("created: %v", ents)
	}
	var got []string
	for _, r := range runcRecords(t, sr) {
		got = append(got, r.Type+"."+r.Action+":"+r.Attrs["result"])
		if *r.Actor.UID != 1234 || r.ContainerID != "c1" || r.Tenant != "default" {
			t.Errorf("record %+v: wrong actor, container or tenant", r)
		}
	}
	if strings.Join(got, " ") != "engine.request: container.floor.network: policy.decision:deny" {
		t.Errorf("audit = %v", got)
	}
}

// An allowed create hands Create the resolved bind sources and the tenant's limits.
func TestDecideAllowResolvesAndConstrains(t *testing.T) {
	rt, _, sr := runcGate(t)
	pol := t.TempDir()
	bundle := t.TempDir()
	target := t.TempDir()
	data := fmt.Sprintf(`{"bulwark": {"tenants": {"small": {"max_memory": 67108864, "max_pids": 64, "bind_sources": [%q]}}}}`, target)
	if err := os.WriteFile(filepath.Join(pol, "data.json"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(bundle, "data")); err != nil {
		t.Fatal(err)
	}
	spec := runcSpec()
	spec.Mounts = []specs.Mount{{Destination: "/data", Type: "bind", Source: "data", Options: []string{"rbind", "ro"}}}
	d, err := Decide(context.Background(), Config{Evaluator: inProcess(t), StateRoot: sr, PolicyDir: pol}, rt,
		Request{Operation: policy.OpCreate, Tenant: "small", ContainerID: "c2", Bundle: bundle, Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Durable(); err != nil {
		t.Fatal(err)
	}
	if got := d.Spec.Mounts[0].Source; got != target {
		t.Errorf("bind source = %q, want the resolved %q", got, target)
	}
	if spec.Mounts[0].Source != "data" {
		t.Errorf("the caller's spec was modified")
	}
	res := d.Spec.Linux.Resources
	if res == nil || *res.Memory.Limit != 64<<20 || *res.Pids.Limit != 64 || len(d.Constraints) != 2 {
		t.Fatalf("resources %+v, constraints %v: want the tenant's maxima", res, d.Constraints)
	}
	// Create floors the spec again: the constrained limits survive it.
	res2, err := rt.Floor(d.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if eff := res2.Spec; *eff.Linux.Resources.Memory.Limit != 64<<20 || *eff.Linux.Resources.Pids.Limit != 64 {
		t.Errorf("after the floor: %+v", eff.Linux.Resources)
	}
	recs := runcRecords(t, sr)
	last := recs[len(recs)-1]
	if last.Type != audit.TypePolicy || last.Action != "constraints" {
		t.Errorf("last record %s.%s, want policy.constraints", last.Type, last.Action)
	}
}

func TestDecideExec(t *testing.T) {
	rt, _, sr := runcGate(t)
	proc := &specs.Process{Args: []string{"/bin/sh"}, Cwd: "/",
		Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_SYS_PTRACE"}}}
	_, err := Decide(context.Background(), Config{Evaluator: inProcess(t), StateRoot: sr}, rt,
		Request{Operation: policy.OpExec, Tenant: "default", ContainerID: "c3", Bundle: t.TempDir(), Spec: runcSpec(), Process: proc})
	var denied *policy.DeniedError
	if !errors.As(err, &denied) || len(denied.Decision.Reasons) != 1 || denied.Decision.Reasons[0].Code != "CAP_FORBIDDEN" {
		t.Fatalf("exec with SYS_PTRACE: %v", err)
	}
	proc.Capabilities = nil
	d, err := Decide(context.Background(), Config{Evaluator: inProcess(t), StateRoot: sr}, rt,
		Request{Operation: policy.OpExec, Tenant: "default", ContainerID: "c3", Bundle: t.TempDir(), Spec: runcSpec(), Process: proc})
	if err != nil {
		t.Fatalf("plain exec: %v", err)
	}
	if err := d.Durable(); err != nil || d.Durable() != nil {
		t.Fatalf("durable: %v", err)
	}
	var ops []string
	for _, r := range runcRecords(t, sr) {
		if r.Action == "decision" {
			ops = append(ops, r.Attrs["operation"]+":"+r.Attrs["result"])
		}
	}
	if strings.Join(ops, " ") != "exec:deny exec:allow" {
		t.Errorf("decisions %v", ops)
	}
}

// A policy that does not compile refuses (fail closed), and the refusal is audited.
func TestDecideBrokenPolicy(t *testing.T) {
	rt, _, sr := runcGate(t)
	pol := t.TempDir()
	if err := os.WriteFile(filepath.Join(pol, "x.rego"), []byte("package bulwark.run\ndecision := {\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Decide(context.Background(), Config{Evaluator: inProcess(t), StateRoot: sr, PolicyDir: pol}, rt,
		Request{Operation: policy.OpCreate, Tenant: "default", ContainerID: "c4", Spec: runcSpec()})
	if err == nil || !strings.Contains(err.Error(), "x.rego") {
		t.Fatalf("err = %v, want a policy error naming the file", err)
	}
	recs := runcRecords(t, sr)
	if last := recs[len(recs)-1]; last.Action != "refused" || last.Attrs["step"] != "policy" {
		t.Errorf("last record %+v, want engine.refused at step policy", last)
	}
	if _, err := Decide(context.Background(), Config{Evaluator: inProcess(t), StateRoot: "relative"}, rt, Request{Spec: runcSpec()}); err == nil {
		t.Error("a relative state root was accepted")
	}
}

// A session that could not start (Begin: a relative state root, an audit log that cannot be
// opened) refuses the request it was to decide, though the request is floored and its document
// built before the session is waited for.
func TestSessionThatCannotStartRefuses(t *testing.T) {
	rt, _, _ := runcGate(t)
	noAudit := t.TempDir()
	if err := os.WriteFile(filepath.Join(noAudit, "audit"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for root, want := range map[string]string{"relative": "must be an absolute path", noAudit: "open audit log"} {
		d, err := Begin(Config{Evaluator: inProcess(t), StateRoot: root}).Decide(context.Background(), rt,
			Request{Operation: policy.OpCreate, Tenant: "default", ContainerID: "s1", Bundle: t.TempDir(), Spec: runcSpec()})
		if err == nil || !strings.Contains(err.Error(), want) || d != nil && d.Spec != nil {
			t.Errorf("state root %s: %+v, %v; want a refusal saying %q", root, d, err, want)
		}
	}
}

// dockerDefaultCaps is the capability set Docker gives a container.
var dockerDefaultCaps = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}

// docker run --cap-add NET_ADMIN: the refusal names NET_ADMIN, by policy and by the floor, and
// nothing else. (Policy was once shown every capability asked whenever the floor refused one, so
// each of Docker's defaults the floor drops anyway came back as CAP_NOT_GRANTED.)
func TestDecideDockerCapAdd(t *testing.T) {
	rt, _, sr := runcGate(t)
	spec := runcSpec()
	set := append(slices.Clone(dockerDefaultCaps), "CAP_NET_ADMIN")
	spec.Process.Capabilities = &specs.LinuxCapabilities{Bounding: set, Effective: set, Permitted: set}
	_, err := Decide(context.Background(), Config{Evaluator: inProcess(t), StateRoot: sr}, rt,
		Request{Operation: policy.OpCreate, Tenant: "default", ContainerID: "c5", Bundle: t.TempDir(), Spec: spec})
	var denied *policy.DeniedError
	if !errors.As(err, &denied) || !errors.Is(err, sandbox.ErrFloor) {
		t.Fatalf("err = %v, want a policy denial and the floor's refusal", err)
	}
	for _, r := range denied.Decision.Reasons {
		if !strings.Contains(r.Message, "NET_ADMIN") {
			t.Errorf("reason %s (%s) is not about NET_ADMIN", r.Code, r.Message)
		}
	}
	if len(denied.Decision.Reasons) == 0 || strings.Count(err.Error(), "forbidden by the floor") != 1 {
		t.Errorf("refusal %v: want NET_ADMIN's reasons and one floor refusal", err)
	}
}

// An id the runtime could never create is refused before anything is decided or audited.
func TestDecideInvalidID(t *testing.T) {
	rt, _, sr := runcGate(t)
	_, err := Decide(context.Background(), Config{Evaluator: inProcess(t), StateRoot: sr}, rt,
		Request{Operation: policy.OpCreate, Tenant: "default", ContainerID: "a+b", Bundle: t.TempDir(), Spec: runcSpec()})
	if err == nil || !strings.Contains(err.Error(), "[A-Za-z0-9][A-Za-z0-9_.-]") {
		t.Fatalf("err = %v, want the id rule", err)
	}
	if recs, _ := audit.Query(filepath.Join(sr, "audit"), audit.Filter{}); len(recs) != 0 {
		t.Errorf("an invalid id was audited: %v", recs)
	}
}

// Host binds are deny-by-default, yet what Docker puts in every container's bundle is still
// allowed under the shipped policy (no tenant allowlist): its per-container /etc/hosts, hostname
// and resolv.conf binds are replaced by the floor's generated files before policy decides, and
// its private /dev/shm is a tmpfs. A bind Docker adds on request (--init's docker-init) is not.
func TestDockerDefaultBindsNeedNoAllowlist(t *testing.T) {
	rt, _, sr := runcGate(t)
	ctrDir := filepath.Join(t.TempDir(), "containers", "0123abcd")
	if err := os.MkdirAll(ctrDir, 0o755); err != nil {
		t.Fatal(err)
	}
	spec := runcSpec()
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm",
		Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=67108864"}})
	for _, f := range []string{"resolv.conf", "hostname", "hosts"} {
		if err := os.WriteFile(filepath.Join(ctrDir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/etc/" + f, Type: "bind",
			Source: filepath.Join(ctrDir, f), Options: []string{"rbind", "rprivate"}})
	}
	d, err := Decide(context.Background(), Config{Evaluator: inProcess(t), StateRoot: sr}, rt,
		Request{Operation: policy.OpCreate, Tenant: "default", ContainerID: "docker1", Bundle: t.TempDir(), Spec: spec})
	if err != nil {
		t.Fatalf("Docker's default bundle under the default policy: %v", err)
	}
	if err := d.Durable(); err != nil {
		t.Fatal(err)
	}

	initBin := filepath.Join(t.TempDir(), "docker-init")
	if err := os.WriteFile(initBin, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/sbin/docker-init", Type: "bind",
		Source: initBin, Options: []string{"rbind", "ro"}})
	_, err = Decide(context.Background(), Config{Evaluator: inProcess(t), StateRoot: sr}, rt,
		Request{Operation: policy.OpCreate, Tenant: "default", ContainerID: "docker2", Bundle: t.TempDir(), Spec: spec})
	if err == nil || !strings.Contains(err.Error(), "MOUNT_HOST_PATH_NOT_ALLOWED") || !strings.Contains(err.Error(), initBin) {
		t.Fatalf("--init's bind without an allowlist: %v", err)
	}
}

// An exec mounts nothing: a bind source removed since the create does not refuse it (a create
// of that spec is refused: its source cannot be resolved).
func TestDecideExecRemovedBindSource(t *testing.T) {
	rt, _, sr := runcGate(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "gone")
	pol := t.TempDir()
	data := fmt.Sprintf(`{"bulwark": {"tenants": {"default": {"max_memory": 1073741824, "max_pids": 4096, "bind_sources": [%q]}}}}`, dir)
	if err := os.WriteFile(filepath.Join(pol, "data.json"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Evaluator: inProcess(t), StateRoot: sr, PolicyDir: pol}
	spec := runcSpec()
	spec.Mounts = []specs.Mount{{Destination: "/data", Type: "bind", Source: src, Options: []string{"rbind", "ro"}}}
	proc := &specs.Process{Args: []string{"/bin/sh"}, Cwd: "/"}
	d, err := Decide(context.Background(), cfg, rt,
		Request{Operation: policy.OpExec, Tenant: "default", ContainerID: "c6", Bundle: t.TempDir(), Spec: spec, Process: proc})
	if err != nil {
		t.Fatalf("exec: %v", err)
	}
	if err := d.Durable(); err != nil {
		t.Fatal(err)
	}
	if _, err := Decide(context.Background(), cfg, rt,
		Request{Operation: policy.OpCreate, Tenant: "default", ContainerID: "c6", Bundle: t.TempDir(), Spec: spec}); err == nil {
		t.Fatal("create with a missing bind source was allowed")
	}
}

// The same request under the same policy is answered from the decision cache, without loading
// the policy, with the same result (a denial stays one) and audited as cached.
func TestDecideCached(t *testing.T) {
	rt, _, sr := runcGate(t)
	bundle := t.TempDir()
	decide := func(caps []string) (*Decision, error) {
		proc := &specs.Process{Args: []string{"/bin/sh"}, Cwd: "/"}
		if caps != nil {
			proc.Capabilities = &specs.LinuxCapabilities{Bounding: caps}
		}
		return Decide(context.Background(), Config{Evaluator: inProcess(t), StateRoot: sr}, rt,
			Request{Operation: policy.OpExec, Tenant: "default", ContainerID: "c5", Bundle: bundle, Spec: runcSpec(), Process: proc})
	}
	for i, want := range []bool{false, false, true, true} {
		var caps []string
		if !want {
			caps = []string{"CAP_SYS_PTRACE"}
		}
		d, err := decide(caps)
		var denied *policy.DeniedError
		switch {
		case want && err != nil, !want && !errors.As(err, &denied):
			t.Fatalf("decision %d: %v, want allow %v", i, err, want)
		case d.Cached != (i%2 == 1) || d.Cached && (d.Load != 0 || d.Prepare != 0):
			t.Fatalf("decision %d: cached %v (load %v, prepare %v)", i, d.Cached, d.Load, d.Prepare)
		}
		if want {
			if err := d.Durable(); err != nil {
				t.Fatal(err)
			}
		}
	}
	var got []string
	for _, r := range runcRecords(t, sr) {
		if r.Action == "decision" {
			got = append(got, r.Attrs["result"]+":"+r.Attrs["cached"])
		}
	}
	if strings.Join(got, " ") != "deny: deny:true allow: allow:true" {
		t.Errorf("decisions %v", got)
	}
}

// TestBeginMakesAuditDirFirst: the state root's audit directory exists once Begin returns, before
// the session's background start, so that a request floored meanwhile sees a bind of it as the
// state root's (MOUNT_STATE_ROOT) rather than a missing source (TestPolicyRefusals failed so).
func TestBeginMakesAuditDirFirst(t *testing.T) {
	root := t.TempDir()
	s := Begin(Config{Evaluator: inProcess(t), StateRoot: root})
	_, err := os.Stat(filepath.Join(root, "audit"))
	s.close()
	if err != nil {
		t.Fatalf("audit directory once Begin returned: %v", err)
	}
}

// A session is started by whichever needs it first: a decision whose session nothing started in
// the background starts it itself, and refuses as TestSessionThatCannotStartRefuses when it cannot
// start; a session closed before it started never starts (no audit log is opened) and refuses
// whatever asks it afterwards.
func TestSessionStartedByTheDecision(t *testing.T) {
	rt, _, sr := runcGate(t)
	noAudit := t.TempDir()
	if err := os.WriteFile(filepath.Join(noAudit, "audit"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	req := Request{Operation: policy.OpCreate, Tenant: "default", ContainerID: "s2", Bundle: t.TempDir(), Spec: runcSpec()}
	if d, err := newSession(Config{Evaluator: inProcess(t), StateRoot: noAudit}).Decide(context.Background(), rt, req); err == nil ||
		!strings.Contains(err.Error(), "open audit log") || d != nil && d.Spec != nil {
		t.Errorf("unstarted session on a state root without an audit log: %+v, %v; want a refusal", d, err)
	}
	d, err := newSession(Config{Evaluator: inProcess(t), StateRoot: sr}).Decide(context.Background(), rt, req)
	if err != nil || d.Spec == nil {
		t.Fatalf("unstarted session: %+v, %v; want the decision", d, err)
	}
	if err := d.Durable(); err != nil {
		t.Fatal(err)
	}
	d.Binds.Close()
	d.Hooks.Close()

	root := t.TempDir()
	s := newSession(Config{Evaluator: inProcess(t), StateRoot: root})
	s.close()
	if err := s.wait(); !errors.Is(err, errClosed) {
		t.Errorf("wait after close: %v, want errClosed", err)
	}
	if _, err := (sessionLog{s}).Append(audit.Event{Type: audit.TypeEngine, Action: "x"}); err == nil {
		t.Error("a closed session's log took an append")
	}
	if _, err := os.Stat(filepath.Join(root, "audit", "lock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a session closed before it started opened the audit log: %v", err)
	}
}

// The request document carries the state root resolved, whichever resolves it (the session's
// goroutine or the decision): a bind of the state root's real directory, asked for under a state
// root named through a symlink, is refused as the state root's — by a session started in the
// background (Begin) and by one its decision starts (newSession).
func TestDecideStateRootResolved(t *testing.T) {
	rt, _, real := runcGate(t)
	link := filepath.Join(t.TempDir(), "state")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	for name, begin := range map[string]func(Config) *Session{"Begin": Begin, "newSession": newSession} {
		spec := runcSpec()
		spec.Mounts = []specs.Mount{{Destination: "/s", Type: "bind", Source: real, Options: []string{"rbind"}}}
		req := Request{Operation: policy.OpCreate, Tenant: "default", ContainerID: "r1", Bundle: t.TempDir(), Spec: spec}
		_, err := begin(Config{Evaluator: inProcess(t), StateRoot: link}).Decide(context.Background(), rt, req)
		var denied *policy.DeniedError
		if !errors.As(err, &denied) || !slices.ContainsFunc(denied.Decision.Reasons, func(r policy.Reason) bool { return r.Code == "MOUNT_STATE_ROOT" }) {
			t.Errorf("%s: a bind of the state root's real directory: %v, want a MOUNT_STATE_ROOT denial", name, err)
		}
	}
}

// An allowed decision's audit append is made by the session's goroutine, without Durable asking
// (it overlaps the sandbox's creation), or by Durable if that comes first — exactly once either
// way.
func TestDecisionAppendedOnce(t *testing.T) {
	rt, _, sr := runcGate(t)
	decisions := func(root string) int {
		n := 0
		for _, r := range runcRecords(t, root) {
			if r.Type == audit.TypePolicy && r.Action == "decision" {
				n++
			}
		}
		return n
	}
	req := Request{Operation: policy.OpCreate, Tenant: "default", ContainerID: "o1", Bundle: t.TempDir(), Spec: runcSpec()}
	d, err := Begin(Config{Evaluator: inProcess(t), StateRoot: sr}).Decide(context.Background(), rt, req)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Binds.Close()
	defer d.Hooks.Close()
	for deadline := time.Now().Add(10 * time.Second); decisions(sr) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the session's goroutine did not append the decision")
		}
	}
	if err := d.Durable(); err != nil {
		t.Fatal(err)
	}
	if n := decisions(sr); n != 1 {
		t.Errorf("%d decision records, want 1", n)
	}

	// Durable first: it makes the append itself if the goroutine has not.
	sr2 := t.TempDir()
	for i := range 20 {
		req.ContainerID = fmt.Sprintf("o%d", i+2)
		d, err := Begin(Config{Evaluator: inProcess(t), StateRoot: sr2}).Decide(context.Background(), rt, req)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Durable(); err != nil {
			t.Fatal(err)
		}
		d.Binds.Close()
		d.Hooks.Close()
		if n := decisions(sr2); n != i+1 {
			t.Fatalf("after %d durable decisions: %d decision records", i+1, n)
		}
	}
}

// Starts made at once (the session's goroutine and the decision, neither waiting for the other)
// publish one: every caller gets it, and what the others opened (an audit log, the cache's
// directory) is released, as is the published one at close.
func TestSessionStartPublishedOnce(t *testing.T) {
	_, _, sr := runcGate(t)
	cfg := Config{Evaluator: inProcess(t), StateRoot: sr}
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	// The cache's directory exists (a decision stored), so that every start pins it.
	if _, err := decideCreate(t, cfg, "p1"); err != nil {
		t.Fatal(err)
	}
	before := fds()
	s := newSession(cfg)
	got := make([]*sessionStart, 8)
	var wg sync.WaitGroup
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = s.start()
		}()
	}
	wg.Wait()
	for _, st := range got {
		if st != got[0] || st.err != nil || st.cache == nil {
			t.Fatalf("starts: %+v and %+v, want one published start with a cache", got[0], st)
		}
	}
	s.close()
	if after := fds(); after != before {
		t.Errorf("%d descriptors open after close, %d before the starts", after, before)
	}
}
