// Package compliance runs `bulwark bench` against real hosts: a default Bulwark state root (on
// its own filesystem) with a running container, where every scored control passes, and the same
// root weakened on purpose — a 0622 private key, an expired TUF timestamp, an edited audit record
// and a runc container with CAP_SYS_ADMIN and no user namespace — where exactly the controls that
// check those fail, and no other. The test binary re-executes itself in a private mount namespace
// (unshare), where the state root's tmpfs lives and dies with it.
package compliance

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/bench"
	"bulwark.dev/bulwark/bench/format"
	"bulwark.dev/bulwark/internal/jsonschema"
	"bulwark.dev/bulwark/sandbox"
	"bulwark.dev/bulwark/signing"
	"bulwark.dev/bulwark/tests/internal/clitest"
	"bulwark.dev/bulwark/tests/internal/testenv"
)

// TestMain runs the tests in a private mount namespace (clitest.Main): the hosts they make mount
// tmpfs state roots.
func TestMain(m *testing.M) { clitest.Main(m) }

// host is a Bulwark state root on its own tmpfs with a signed image and a running container.
type host struct {
	dir, root string
	leaks     *testenv.Leaks
}

func newHost(t *testing.T) *host {
	t.Helper()
	testenv.RequireRoot(t)
	dir := t.TempDir()
	h := &host{dir: dir, root: filepath.Join(dir, "state")}
	if err := os.Mkdir(h.root, 0o700); err != nil {
		t.Fatal(err)
	}
	// The private mount namespace of TestMain: the mount goes with the test binary.
	if err := unix.Mount("tmpfs", h.root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0700,size=256m"); err != nil {
		t.Fatalf("state root tmpfs: %v", err)
	}
	h.leaks = testenv.NewLeaks(t, h.root, dir)
	// After the leak check's registration, so it runs before that check.
	t.Cleanup(func() { unix.Unmount(h.root, unix.MNT_DETACH) })
	tar := testenv.BusyboxTar(t, filepath.Join(dir, "busybox.tar"), []string{"sh", "sleep"}, nil)
	clitest.Must(t, h.root, "image", "import", tar, "--tag", "busybox:1")
	clitest.Must(t, h.root, "trust", "init")
	clitest.Must(t, h.root, "trust", "sign", "busybox:1")
	name := h.name("ctr")
	clitest.Must(t, h.root, "run", "-d", "--name", name, "busybox:1", "sleep", "600")
	t.Cleanup(func() { clitest.Run(t, h.root, "rm", "--force", name) })
	return h
}

func (h *host) name(prefix string) string {
	var b [4]byte
	rand.Read(b[:])
	return h.leaks.Track(prefix + "-" + hex.EncodeToString(b[:]))
}

// scan runs bulwark bench with args and returns its report and exit status; the JSON validates
// against the report's schema.
func scan(t *testing.T, root string, args ...string) (*bench.Report, int) {
	t.Helper()
	r := clitest.Run(t, root, append([]string{"bench", "--format", "json"}, args...)...)
	if r.Code != 0 && r.Code != 3 {
		t.Fatalf("bench: exit %d\n%s", r.Code, r.Stderr)
	}
	schema, err := jsonschema.Compile(format.ReportSchema)
	if err != nil {
		t.Fatal(err)
	}
	if err := schema.ValidateJSON([]byte(r.Stdout)); err != nil {
		t.Fatalf("the report does not validate against its schema: %v", err)
	}
	var rep bench.Report
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		t.Fatal(err)
	}
	return &rep, r.Code
}

func byStatus(rep *bench.Report, s bench.Status) []string {
	var out []string
	for _, r := range rep.Results {
		if r.Status == s {
			out = append(out, r.ID)
		}
	}
	slices.Sort(out)
	return out
}

func result(t *testing.T, rep *bench.Report, id string) bench.Result {
	t.Helper()
	for _, r := range rep.Results {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("no result for %s", id)
	return bench.Result{}
}

// The controls a default host cannot pass or judge: no bulwarkd socket (skipped, by name), no
// kernel audit rules (level 2, a warning). Everything else that is scored passes.
var (
	defaultSkips = []string{"BW-2.5"}
	defaultWarns = []string{"BW-1.7"}
)

func TestDefaultHostPasses(t *testing.T) {
	h := newHost(t)
	rep, code := scan(t, h.root, "--exit-code", "3")
	if code != 0 {
		t.Errorf("exit %d on a default host", code)
	}
	if len(rep.Containers) != 1 {
		t.Fatalf("containers scanned: %v", rep.Containers)
	}
	if f := byStatus(rep, bench.Fail); len(f) > 0 {
		for _, id := range f {
			r := result(t, rep, id)
			t.Errorf("%s failed: %s %v %+v", id, r.Actual, r.Details, r.Findings)
		}
	}
	for _, r := range rep.Results {
		switch {
		case !r.Scored:
		case slices.Contains(defaultSkips, r.ID):
			if r.Status != bench.Skip {
				t.Errorf("%s: %s, want SKIP (%s)", r.ID, r.Status, r.Actual)
			}
		case r.ID == "BW-5.16":
			// Landlock only: the kernel shows no per-process Landlock domain.
			if r.Status != bench.Info && r.Status != bench.Pass {
				t.Errorf("%s: %s", r.ID, r.Status)
			}
		case r.Status != bench.Pass:
			t.Errorf("%s (%s): %s, want PASS: %s", r.ID, r.Title, r.Status, r.Actual)
		}
	}
	if w := byStatus(rep, bench.Warn); strings.Join(w, " ") != strings.Join(defaultWarns, " ") {
		t.Errorf("warnings %v, want %v", w, defaultWarns)
	}
	t.Logf("default host: %+v", rep.Summary)
}

// runcContainer starts a runc container with everything of the floor (masked and read-only paths,
// rlimits, no_new_privs, a seccomp filter, limits, a read-only root, its own pid, net, ipc, uts,
// mount and cgroup namespaces) except a user namespace, and with CAP_SYS_ADMIN. It returns runc's
// --root.
func runcContainer(t *testing.T, h *host) string {
	t.Helper()
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("runc missing (apt-get install runc)")
	}
	floor := sandbox.FloorExpected()
	caps := []string{"CAP_SYS_ADMIN", "CAP_CHOWN", "CAP_KILL"}
	spec := testenv.RuncSpec([]string{"sleep", "600"}, testenv.WithCaps(caps...), testenv.WithMemoryLimit(64<<20), testenv.WithPidsLimit(64))
	spec.Root = &specs.Root{Readonly: true}
	spec.Linux.MaskedPaths = floor.MaskedPaths
	spec.Linux.ReadonlyPaths = floor.ReadonlyPaths
	spec.Process.Rlimits = clampRlimits(t, floor.Rlimits)
	spec.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"kexec_load"}, Action: specs.ActErrno},
	}}
	name := h.name("runc")
	spec.Linux.CgroupsPath = "/bulwark-compliance-" + name
	bundle := testenv.Bundle(t, spec)
	root := filepath.Join(h.dir, "runc")
	// runc's output goes to a file, not a pipe: the container inherits runc's stdio, and a pipe
	// would hold the call until the container exits.
	logPath := filepath.Join(h.dir, "runc.log")
	runc := func(args ...string) error {
		log, err := os.Create(logPath)
		if err != nil {
			return err
		}
		defer log.Close()
		cmd := exec.Command("runc", append([]string{"--root", root}, args...)...)
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Run(); err != nil {
			out, _ := os.ReadFile(logPath)
			return fmt.Errorf("runc %v: %v: %s", args, err, out)
		}
		return nil
	}
	if err := runc("create", "--bundle", bundle, name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { runc("delete", "--force", name) })
	if err := runc("start", name); err != nil {
		t.Fatal(err)
	}
	return root
}

// TestWeakenedHostFailsExactly weakens one thing per control and checks that exactly those
// controls fail: the key's mode (BW-3.2), the timestamp's expiry (BW-6.3: the images' signatures,
// BW-4.1, still verify), the audit chain (BW-6.1), and the runc container's capabilities
// (BW-5.4, BW-5.5) and missing user namespace (BW-5.2) — while the Bulwark container beside it
// passes those same runtime controls.
func TestWeakenedHostFailsExactly(t *testing.T) {
	h := newHost(t)
	keys, err := filepath.Glob(filepath.Join(h.root, "trust", "keys", "targets", "*.key"))
	if err != nil || len(keys) == 0 {
		t.Fatalf("targets key: %v %v", keys, err)
	}
	if err := os.Chmod(keys[0], 0o622); err != nil {
		t.Fatal(err)
	}
	// A timestamp signed two days ago, with its one-day lifetime: expired yesterday.
	repo := signing.NewRepo(filepath.Join(h.root, "trust"))
	repo.Now = func() time.Time { return time.Now().Add(-48 * time.Hour) }
	if err := repo.Refresh(); err != nil {
		t.Fatal(err)
	}
	runcRoot := runcContainer(t, h)
	editAuditRecord(t, filepath.Join(h.root, "audit", "audit-000000.jsonl"))

	rep, code := scan(t, h.root, "--target", "bulwark,runc", "--runc-root", runcRoot, "--exit-code", "3")
	if code != 3 {
		t.Errorf("exit %d, want 3 (--exit-code)", code)
	}
	want := []string{"BW-3.2", "BW-5.2", "BW-5.4", "BW-5.5", "BW-6.1", "BW-6.3"}
	if got := byStatus(rep, bench.Fail); strings.Join(got, " ") != strings.Join(want, " ") {
		for _, id := range got {
			r := result(t, rep, id)
			t.Logf("%s: %s %v %+v", id, r.Actual, r.Details, r.Findings)
		}
		t.Fatalf("failing %v, want %v", got, want)
	}
	if len(rep.Containers) != 2 {
		t.Fatalf("containers %v", rep.Containers)
	}
	for _, id := range []string{"BW-5.2", "BW-5.4", "BW-5.5"} {
		for _, f := range result(t, rep, id).Findings {
			want := bench.Pass
			if strings.HasPrefix(f.Target, "runc:") {
				want = bench.Fail
			}
			if f.Status != want {
				t.Errorf("%s %s: %s (%s), want %s", id, f.Target, f.Status, f.Actual, want)
			}
		}
	}
	if d := strings.Join(result(t, rep, "BW-5.4").Findings[1].Details, " "); !strings.Contains(d, "CAP_SYS_ADMIN (forbidden)") &&
		!strings.Contains(strings.Join(result(t, rep, "BW-5.4").Findings[0].Details, " "), "CAP_SYS_ADMIN (forbidden)") {
		t.Errorf("BW-5.4 does not name CAP_SYS_ADMIN: %+v", result(t, rep, "BW-5.4").Findings)
	}
	if r := result(t, rep, "BW-3.2"); !strings.Contains(strings.Join(r.Details, " "), "mode 0622 exceeds 0600") {
		t.Errorf("BW-3.2 details: %v", r.Details)
	}
	if r := result(t, rep, "BW-6.3"); !strings.Contains(r.Actual, "timestamp") {
		t.Errorf("BW-6.3: %s", r.Actual)
	}
	if r := result(t, rep, "BW-6.1"); !strings.Contains(r.Actual, "record edited") {
		t.Errorf("BW-6.1: %s", r.Actual)
	}
	if r := result(t, rep, "BW-4.1"); r.Status != bench.Pass {
		t.Errorf("BW-4.1 (signatures, apart from freshness): %s %s", r.Status, r.Actual)
	}
	otherFormats(t, h.root, len(want), "--target", "bulwark,runc", "--runc-root", runcRoot)
}

// otherFormats checks the SARIF and JUnit outputs of the same scan: the SARIF log validates
// against the SARIF 2.1.0 definitions bench uses and has one "fail" result per failing control;
// the JUnit XML parses and counts the same failures.
func otherFormats(t *testing.T, root string, failures int, args ...string) {
	t.Helper()
	raw, err := os.ReadFile("../../bench/format/testdata/sarif-2.1.0-subset.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	schema, err := jsonschema.Compile(raw)
	if err != nil {
		t.Fatal(err)
	}
	out := clitest.Run(t, root, append([]string{"bench", "--format", "sarif"}, args...)...).Stdout
	if err := schema.ValidateJSON([]byte(out)); err != nil {
		t.Fatalf("SARIF does not validate: %v", err)
	}
	var log struct {
		Runs []struct {
			Results []struct{ Kind, Level string }
		}
	}
	if err := json.Unmarshal([]byte(out), &log); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range log.Runs[0].Results {
		if r.Kind == "fail" && r.Level == "error" {
			n++
		}
	}
	if n != failures {
		t.Errorf("SARIF: %d failing results, want %d", n, failures)
	}
	var suites struct {
		Failures int `xml:"failures,attr"`
		Tests    int `xml:"tests,attr"`
	}
	out = clitest.Run(t, root, append([]string{"bench", "--format", "junit"}, args...)...).Stdout
	if err := xml.Unmarshal([]byte(out), &suites); err != nil {
		t.Fatalf("JUnit: %v", err)
	}
	if suites.Failures != failures || suites.Tests == 0 {
		t.Errorf("JUnit: %d failures of %d tests, want %d failures", suites.Failures, suites.Tests, failures)
	}
}

// clampRlimits lowers each limit to this process's hard limit: runc cannot raise one without
// CAP_SYS_RESOURCE, which this VM's bounding set lacks.
func clampRlimits(t *testing.T, rl []specs.POSIXRlimit) []specs.POSIXRlimit {
	t.Helper()
	res := map[string]int{"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_CORE": unix.RLIMIT_CORE}
	out := slices.Clone(rl)
	for i, l := range out {
		r, ok := res[l.Type]
		if !ok {
			t.Fatalf("no resource number for %s", l.Type)
		}
		var cur unix.Rlimit
		if err := unix.Getrlimit(r, &cur); err != nil {
			t.Fatal(err)
		}
		out[i].Hard = min(l.Hard, cur.Max)
		out[i].Soft = min(l.Soft, out[i].Hard)
	}
	return out
}

// editAuditRecord changes one character of a string value in the third record, keeping the
// line valid JSON: only the hash chain can tell.
func editAuditRecord(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	if len(lines) < 4 {
		t.Fatalf("audit log has %d lines", len(lines))
	}
	const key = `"action":"`
	i := strings.Index(lines[2], key)
	if i < 0 {
		t.Fatalf("no action in %s", lines[2])
	}
	j := i + len(key)
	lines[2] = lines[2][:j] + "X" + lines[2][j+1:]
	if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o600); err != nil {
		t.Fatal(err)
	}
}
