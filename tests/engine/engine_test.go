// Package engine tests the bulwark binary's run path end to end on real sandboxes: a busybox
// image imported and signed on a fresh state root, runs that must succeed, runs that must be
// refused (unsigned, tampered, re-pointed, denied) and leave nothing behind, the audit trail of
// each, tamper detection, detached containers and 50 parallel runs.
package engine

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bulwark.dev/bulwark/internal/runroot"
	"bulwark.dev/bulwark/tests/internal/testenv"

	"bulwark.dev/bulwark/tests/internal/clitest"
)

func TestMain(m *testing.M) { clitest.Main(m) }

// busyboxTar writes a rootfs tar of the static busybox (a shell and its applets) with /data/marker
// holding marker, and returns it.
func busyboxTar(t testing.TB, dir, marker string) string {
	return testenv.BusyboxTar(t, filepath.Join(dir, "busybox-"+marker+".tar"),
		[]string{"sh", "echo", "cat", "id", "sleep", "true", "hostname", "ls", "env"},
		map[string]string{"data/marker": marker + "\n"})
}

// fixture is a fresh state root with busybox:1 imported and signed.
type fixture struct {
	root  string
	dir   string
	leaks *testenv.Leaks
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	testenv.RequireRoot(t)
	dir := t.TempDir()
	f := &fixture{root: filepath.Join(dir, "state"), dir: dir}
	f.leaks = testenv.NewLeaks(t, f.root, dir)
	clitest.Must(t, f.root, "image", "import", busyboxTar(t, dir, "signed"), "--tag", "busybox:1")
	clitest.Must(t, f.root, "trust", "init")
	clitest.Must(t, f.root, "trust", "sign", "busybox:1")
	return f
}

// name returns a fresh container name, tracked for leaks.
func (f *fixture) name(t testing.TB, prefix string) string {
	var b [4]byte
	rand.Read(b[:])
	return f.leaks.Track(prefix + "-" + hex.EncodeToString(b[:]))
}

// records returns the audit records of one container, in chain order.
func (f *fixture) records(t *testing.T, id string) []map[string]any {
	t.Helper()
	return f.query(t, "--container", id)
}

// query returns the audit records `audit query` selects with filter, in chain order.
func (f *fixture) query(t *testing.T, filter ...string) []map[string]any {
	t.Helper()
	out := clitest.Must(t, f.root, append([]string{"audit", "query"}, filter...)...)
	var recs []map[string]any
	dec := json.NewDecoder(strings.NewReader(out))
	for {
		var r map[string]any
		if err := dec.Decode(&r); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("audit query output: %v\n%s", err, out)
		}
		recs = append(recs, r)
	}
	return recs
}

// inOrder reports whether want is a subsequence of got.
func inOrder(got, want []string) bool {
	i := 0
	for _, a := range got {
		if i < len(want) && a == want[i] {
			i++
		}
	}
	return i == len(want)
}

// actions lists "type.action" of records.
func actions(recs []map[string]any) []string {
	var out []string
	for _, r := range recs {
		out = append(out, fmt.Sprint(r["type"], ".", r["action"]))
	}
	return out
}

func find(recs []map[string]any, typ, action string) map[string]any {
	for _, r := range recs {
		if r["type"] == typ && r["action"] == action {
			return r
		}
	}
	return nil
}

func attr(r map[string]any, k string) string {
	if r == nil {
		return ""
	}
	a, _ := r["attrs"].(map[string]any)
	s, _ := a[k].(string)
	return s
}

// assertNothingLeft checks the state root (and its run root) holds no container of any kind and the kernel has
// no mount, cgroup or process of the tracked ids.
func (f *fixture) assertNothingLeft(t testing.TB) {
	t.Helper()
	f.leaks.AssertNone(t)
	// The sandbox's state of each container, and a foreground --rm run's record, are in the
	// state root's run root (tmpfs).
	for _, d := range []string{filepath.Join(runroot.Of(f.root), "containers"), filepath.Join(runroot.Of(f.root), "engine"), filepath.Join(f.root, "containers"), filepath.Join(f.root, "engine")} {
		ents, _ := os.ReadDir(d)
		if len(ents) != 0 {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Errorf("%s/ still holds %v", d, names)
		}
	}
}

func TestSignedImageRuns(t *testing.T) {
	f := newFixture(t)
	id := f.name(t, "ok")
	r := clitest.Run(t, f.root, "run", "--rm", "--name", id, "busybox:1", "sh", "-c", "cat /data/marker; id -u; hostname")
	if r.Code != 0 {
		t.Fatalf("run: exit %d: %s", r.Code, r.Stderr)
	}
	if want := "signed\n0\n" + id + "\n"; r.Stdout != want {
		t.Errorf("output %q, want %q", r.Stdout, want)
	}
	f.assertNothingLeft(t)

	recs := f.records(t, id)
	want := []string{"engine.request", "engine.identity", "trust.resolve", "image.verify", "policy.decision",
		"container.floor.raises", "container.create", "container.start", "container.exit", "container.delete"}
	if got := actions(recs); !inOrder(got, want) {
		t.Errorf("audit story:\n got %v\nwant %v in this order (the sandbox may add its own events between)", got, want)
	}
	reqID := recs[0]["request_id"]
	for _, rec := range recs {
		if rec["request_id"] != reqID || rec["tenant"] != "default" {
			t.Errorf("record %v: request %v tenant %v, want %v default", rec["action"], rec["request_id"], rec["tenant"], reqID)
		}
		if rec["type"] != "engine" && !strings.HasPrefix(fmt.Sprint(rec["image_digest"]), "sha256:") {
			t.Errorf("record %v has no image digest", rec["action"])
		}
	}
	d := find(recs, "policy", "decision")
	if attr(d, "result") != "allow" || !strings.HasPrefix(attr(d, "input_digest"), "sha256:") || attr(d, "revision") == "" {
		t.Errorf("decision record: %v", d)
	}
	if attr(find(recs, "container", "start"), "pid") == "" {
		t.Errorf("start record has no pid")
	}
	exit := find(recs, "container", "exit")
	if attr(exit, "code") != "0" || attr(exit, "duration_ns") == "" || attr(exit, "peak_memory") == "" {
		t.Errorf("exit record: %v", exit)
	}
	if out := clitest.Must(t, f.root, "audit", "verify"); !strings.Contains(out, "OK") {
		t.Errorf("audit verify: %s", out)
	}

	// By digest: NAME@DIGEST must itself be a signed target.
	dg := fmt.Sprint(find(recs, "trust", "resolve")["image_digest"])
	if out := clitest.Must(t, f.root, "run", "--rm", "busybox@"+dg, "echo", "by digest"); out != "by digest\n" {
		t.Errorf("run by digest: %q", out)
	}
	r = clitest.Run(t, f.root, "run", "--rm", "busybox@sha256:"+strings.Repeat("0", 64), "true")
	if r.Code != 125 || !strings.Contains(r.Stderr, "not a signed target") {
		t.Errorf("unsigned digest: exit %d %s", r.Code, r.Stderr)
	}
}

func TestExitStatus(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"sh", "-c", "exit 3"}, 3},
		{[]string{"nosuchcommand"}, 127},
		{[]string{"/etc/passwd"}, 126},
		{[]string{"/etc"}, 126}, // a directory: Docker's 126, was 127
		// The workload's shell reports its child's death by SIGTERM as 128+15.
		{[]string{"sh", "-c", "sh -c 'kill -TERM $$'; exit $?"}, 143},
	} {
		id := f.name(t, fmt.Sprintf("exit%d", tc.code))
		r := clitest.Run(t, f.root, append([]string{"run", "--rm", "--name", id, "busybox:1"}, tc.args...)...)
		if r.Code != tc.code {
			t.Errorf("%v: exit %d, want %d (stderr %s)", tc.args, r.Code, tc.code, r.Stderr)
		}
	}
	f.assertNothingLeft(t)
}

// TestRefused: every refusal exits 125, says why, creates nothing, and is in the audit trail.
func TestRefused(t *testing.T) {
	f := newFixture(t)
	clitest.Must(t, f.root, "image", "import", busyboxTar(t, f.dir, "unsigned"), "--tag", "unsigned:1")
	clitest.Must(t, f.root, "image", "import", busyboxTar(t, f.dir, "tampered"), "--tag", "tampered:1")
	clitest.Must(t, f.root, "trust", "sign", "tampered:1")
	clitest.Must(t, f.root, "image", "import", busyboxTar(t, f.dir, "signed-b"), "--tag", "repointed:1")
	clitest.Must(t, f.root, "trust", "sign", "repointed:1")
	// Re-point repointed:1 at another image without signing.
	clitest.Must(t, f.root, "image", "import", busyboxTar(t, f.dir, "evil"), "--tag", "repointed:1")
	tamperLayer(t, f.root, "tampered:1")
	// An image that ran once (layers unpacked) and was tampered with since.
	clitest.Must(t, f.root, "image", "import", busyboxTar(t, f.dir, "used"), "--tag", "used:1")
	clitest.Must(t, f.root, "trust", "sign", "used:1")
	clitest.Must(t, f.root, "run", "--rm", "--name", f.name(t, "used"), "used:1", "true")
	tamperLayer(t, f.root, "used:1")
	// Images that ran once whose configuration or manifest was tampered with since.
	for _, which := range []string{"config", "manifest"} {
		ref := "used-" + which + ":1"
		clitest.Must(t, f.root, "image", "import", busyboxTar(t, f.dir, "used-"+which), "--tag", ref)
		clitest.Must(t, f.root, "trust", "sign", ref)
		clitest.Must(t, f.root, "run", "--rm", "--name", f.name(t, "used-"+which), ref, "true")
		tamperBlob(t, f.root, ref, which)
	}

	for _, tc := range []struct {
		name   string
		args   []string
		stderr []string
		event  string
	}{
		{"unsigned", []string{"unsigned:1", "true"}, []string{"image verification failed", "not a signed target"}, "trust.verify.failed"},
		{"tampered", []string{"tampered:1", "true"}, []string{"image verification failed", "does not match"}, "trust.verify.failed"},
		{"tampered-after-use", []string{"used:1", "true"}, []string{"image verification failed", "does not match"}, "trust.verify.failed"},
		{"config-tampered-after-use", []string{"used-config:1", "true"}, []string{"image verification failed", "does not match"}, "trust.verify.failed"},
		{"manifest-tampered-after-use", []string{"used-manifest:1", "true"}, []string{"image verification failed", "does not match"}, "trust.verify.failed"},
		{"repointed", []string{"repointed:1", "true"}, []string{"image verification failed", "signed as"}, "trust.verify.failed"},
		{"cap-sys-admin", []string{"--cap-add", "SYS_ADMIN", "busybox:1", "true"}, []string{"denied by policy", "CAP_FORBIDDEN", "SYS_ADMIN is never granted"}, "policy.decision"},
		{"many-reasons", []string{"--cap-add", "SYS_PTRACE", "--cap-add", "NET_ADMIN", "-v", "/etc:/hostetc", "--security-opt", "seccomp=unconfined", "busybox:1", "true"},
			[]string{"SYS_PTRACE is never granted", "NET_ADMIN is never granted", "MOUNT_HOST_PATH_FORBIDDEN", "SECCOMP_UNCONFINED"}, "policy.decision"},
		{"privileged", []string{"--privileged", "busybox:1", "true"}, []string{"PRIVILEGED", "never run"}, "policy.decision"},
		{"memory-above-tenant-max", []string{"--memory", "64g", "busybox:1", "true"}, []string{"MEMORY_LIMIT_ABOVE_MAX"}, "policy.decision"},
		{"unknown-tenant", []string{"--tenant", "nobody-here", "busybox:1", "true"}, []string{"TENANT_UNKNOWN"}, "policy.decision"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := f.name(t, "deny")
			r := clitest.Run(t, f.root, append([]string{"run", "--rm", "--name", id}, tc.args...)...)
			if r.Code != 125 {
				t.Fatalf("exit %d, want 125; stderr: %s", r.Code, r.Stderr)
			}
			for _, s := range tc.stderr {
				if !strings.Contains(r.Stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, r.Stderr)
				}
			}
			recs := f.records(t, id)
			typ, action, _ := strings.Cut(tc.event, ".")
			ev := find(recs, typ, action)
			if ev == nil {
				t.Fatalf("no %s record; story: %v", tc.event, actions(recs))
			}
			if typ == "policy" && attr(ev, "result") != "deny" {
				t.Errorf("decision record: %v", ev)
			}
			for _, a := range actions(recs) {
				if strings.HasPrefix(a, "container.create") || a == "container.start" {
					t.Errorf("refused run has a %s record", a)
				}
			}
			f.assertNothingLeft(t)
		})
	}
	clitest.Must(t, f.root, "audit", "verify")
}

// tamperLayer flips a byte of the image's layer blob in the store.
func tamperLayer(t *testing.T, root, ref string) { tamperBlob(t, root, ref, "layer") }

// tamperBlob flips a byte of the image's layer, config or manifest blob in the store.
func tamperBlob(t *testing.T, root, ref, which string) {
	t.Helper()
	type desc struct{ Digest string }
	var img struct {
		Descriptor desc `json:"descriptor"`
		Manifest   struct {
			Config desc   `json:"config"`
			Layers []desc `json:"layers"`
		} `json:"manifest"`
	}
	out := clitest.Must(t, root, "image", "inspect", ref)
	if err := json.Unmarshal([]byte(out), &img); err != nil || len(img.Manifest.Layers) == 0 {
		t.Fatalf("image inspect %s: %v\n%s", ref, err, out)
	}
	d := map[string]string{"layer": img.Manifest.Layers[0].Digest, "config": img.Manifest.Config.Digest, "manifest": img.Descriptor.Digest}[which]
	if d == "" {
		t.Fatalf("image inspect %s: no %s digest\n%s", ref, which, out)
	}
	p := filepath.Join(root, "images", "blobs", "sha256", strings.TrimPrefix(d, "sha256:"))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestAuditTamperDetected(t *testing.T) {
	f := newFixture(t)
	id := f.name(t, "audited")
	clitest.Must(t, f.root, "run", "--rm", "--name", id, "busybox:1", "true")
	clitest.Must(t, f.root, "audit", "verify")
	segs, _ := filepath.Glob(filepath.Join(f.root, "audit", "audit-*.jsonl"))
	if len(segs) == 0 {
		t.Fatal("no audit segment")
	}
	orig, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	// Every byte position class: a digit of the exit code, a letter of an action, a hash hex.
	for _, needle := range []string{`"action":"exit"`, `"code":"0"`, `"result":"allow"`} {
		i := bytes.Index(orig, []byte(needle))
		if i < 0 {
			t.Fatalf("segment has no %s", needle)
		}
		b := append([]byte(nil), orig...)
		b[i+len(needle)-2] ^= 0x01
		if err := os.WriteFile(segs[0], b, 0o600); err != nil {
			t.Fatal(err)
		}
		r := clitest.Run(t, f.root, "audit", "verify")
		if r.Code == 0 {
			t.Errorf("audit verify passed after editing %s", needle)
		}
		if !strings.Contains(r.Stderr, "record") {
			t.Errorf("audit verify does not name the bad record: %s", r.Stderr)
		}
	}
	if err := os.WriteFile(segs[0], orig, 0o600); err != nil {
		t.Fatal(err)
	}
	clitest.Must(t, f.root, "audit", "verify")
}
