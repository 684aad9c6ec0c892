package runccli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"bulwark.dev/bulwark/sandbox"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]syscall.Signal{
		"9": syscall.SIGKILL, "KILL": syscall.SIGKILL, "SIGKILL": syscall.SIGKILL, "sigterm": syscall.SIGTERM,
		"hup": syscall.SIGHUP, "USR1": syscall.SIGUSR1, "15": syscall.SIGTERM,
	} {
		got, err := parseSignal(in)
		if err != nil || got != want {
			t.Errorf("parseSignal(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "-1", "65", "SIGNOPE", "9x"} {
		if _, err := parseSignal(bad); err == nil {
			t.Errorf("parseSignal(%q) succeeded", bad)
		}
	}
}

func TestValidateID(t *testing.T) {
	for _, ok := range []string{"a", "c1", "my-container_1.2", strings.Repeat("a", 128)} {
		if err := validateID(ok); err != nil {
			t.Errorf("validateID(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "../x", "a/b", "a b", "x\n", "/abs", "a+b", "-a", strings.Repeat("a", 129)} {
		if err := validateID(bad); err == nil {
			t.Errorf("validateID(%q) accepted", bad)
		}
	}
}

// TestLogJSON: containerd's shim parses each line of --log as {"level","msg","time"} and reports the
// msg of the last "error" line.
func TestLogJSON(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log.json")
	l, err := newLogger(p, "json", false, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	l.Debugf("hidden without --debug")
	code := finish(fmt.Errorf("create container x: %w", errors.New("layer seccomp, step load\nsecond line")), l)
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	b, rerr := os.ReadFile(p)
	if rerr != nil {
		t.Fatal(rerr)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 1 {
		t.Fatalf("want one line, got %q", b)
	}
	var entry map[string]string
	if err := json.Unmarshal([]byte(lines[0]), &entry); err != nil {
		t.Fatal(err)
	}
	if entry["level"] != "error" || entry["msg"] != "create container x: layer seccomp, step load\nsecond line" || entry["time"] == "" {
		t.Errorf("log entry %v", entry)
	}
}

func TestLogText(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log")
	l, err := newLogger(p, "text", true, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	l.Debugf("x=%d", 1)
	l.flush()
	b, _ := os.ReadFile(p)
	if !strings.Contains(string(b), `level=debug msg="x=1"`) || !strings.HasPrefix(string(b), "time=") {
		t.Errorf("text log %q", b)
	}
	if _, err := newLogger(p, "xml", false, time.Now()); err == nil {
		t.Error("unknown log format accepted")
	}
}

// TestLogDebugDeferred: debug lines wait (the log is O_SYNC) until the next other line or a
// flush, and keep their order with it.
func TestLogDebugDeferred(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log")
	l, err := newLogger(p, "text", true, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	read := func() string { b, _ := os.ReadFile(p); return string(b) }
	l.Debugf("one")
	l.Debugf("two")
	if got := read(); got != "" {
		t.Fatalf("debug lines written at once: %q", got)
	}
	l.Warn("three")
	l.Debugf("four")
	lines := strings.Split(strings.TrimSpace(read()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], `msg="one"`) || !strings.Contains(lines[1], `msg="two"`) ||
		!strings.Contains(lines[2], `level=warning msg="three"`) {
		t.Fatalf("log before the flush %q", lines)
	}
	l.flushSteps()
	if got := read(); !strings.HasSuffix(got, "level=debug msg=\"four\"\n") {
		t.Errorf("log after the flush %q", got)
	}
}

func TestFinishExitCodes(t *testing.T) {
	l, _ := newLogger(filepath.Join(t.TempDir(), "log"), "json", false, time.Now())
	if c := finish(nil, l); c != 0 {
		t.Errorf("nil error: %d", c)
	}
	if c := finish(&exitError{code: 137}, l); c != 137 {
		t.Errorf("container status: %d", c)
	}
}

func TestWritePidFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "init.pid")
	if err := writePidFile(p, 4242); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if string(b) != "4242" {
		t.Errorf("pid file %q", b)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("temp file left: %v", ents)
	}
	if err := writePidFile("", 1); err != nil {
		t.Errorf("empty path: %v", err)
	}
}

func TestParseUser(t *testing.T) {
	var u specs.User
	if err := parseUser("1000:100", &u); err != nil || u.UID != 1000 || u.GID != 100 {
		t.Errorf("1000:100 -> %+v %v", u, err)
	}
	u = specs.User{GID: 5}
	if err := parseUser("7", &u); err != nil || u.UID != 7 || u.GID != 5 {
		t.Errorf("7 -> %+v %v", u, err)
	}
	for _, bad := range []string{"root", "1:x", "-1", ""} {
		if err := parseUser(bad, &u); err == nil {
			t.Errorf("parseUser(%q) accepted", bad)
		}
	}
}

func writeBundle(t *testing.T, s *specs.Spec) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(s)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestBuildProcessFromBundle(t *testing.T) {
	dir := writeBundle(t, defaultSpec(false))
	p, err := buildProcess(dir, []string{"ls", "-l"}, &execOpts{
		env: []string{"A=b"}, cwd: "/tmp", user: "5:6", addGids: []string{"7"}, caps: []string{"chown"}, tty: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(p.Args, " ") != "ls -l" || p.Cwd != "/tmp" || p.User.UID != 5 || p.User.GID != 6 ||
		len(p.User.AdditionalGids) != 1 || !p.Terminal || p.Env[len(p.Env)-1] != "A=b" {
		t.Errorf("process %+v", p)
	}
	if c := p.Capabilities; c.Bounding[len(c.Bounding)-1] != "CAP_CHOWN" || len(c.Ambient) != 0 {
		t.Errorf("caps %+v", c)
	}
	if _, err := buildProcess(dir, nil, &execOpts{}); err == nil {
		t.Error("exec without a command accepted")
	}
}

func TestBuildProcessFromFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "p.json")
	os.WriteFile(f, []byte(`{"args":["/bin/true"],"cwd":"/"}`), 0o600)
	p, err := buildProcess("/nonexistent", nil, &execOpts{processFile: f})
	if err != nil || p.Args[0] != "/bin/true" {
		t.Errorf("process %+v, %v", p, err)
	}
	os.WriteFile(f, []byte(`{"args":[`), 0o600)
	if _, err := buildProcess("/nonexistent", nil, &execOpts{processFile: f}); err == nil || !strings.Contains(err.Error(), "parse") {
		t.Errorf("malformed process file: %v", err)
	}
}

func TestLoadBundleErrors(t *testing.T) {
	good := writeBundle(t, defaultSpec(false))
	if _, _, err := loadBundle(good); err != nil {
		t.Fatalf("good bundle: %v", err)
	}
	noRoot := writeBundle(t, defaultSpec(false))
	os.Remove(filepath.Join(noRoot, "rootfs"))
	malformed := t.TempDir()
	os.WriteFile(filepath.Join(malformed, "config.json"), []byte("{"), 0o644)
	noProcess := writeBundle(t, &specs.Spec{Root: &specs.Root{Path: "rootfs"}})
	for dir, want := range map[string]string{
		noRoot: "rootfs", malformed: "parse", noProcess: "process", t.TempDir(): "config.json",
	} {
		if _, _, err := loadBundle(dir); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("loadBundle(%s) = %v; want error mentioning %q", dir, err, want)
		}
	}
}

// TestDefaultSpecMeetsFloor: the spec we write asks for what the floor would impose anyway.
func TestDefaultSpecMeetsFloor(t *testing.T) {
	s := defaultSpec(false)
	ns := map[specs.LinuxNamespaceType]bool{}
	for _, n := range s.Linux.Namespaces {
		if n.Path != "" {
			t.Errorf("namespace %s joins a path", n.Type)
		}
		ns[n.Type] = true
	}
	for _, want := range []specs.LinuxNamespaceType{specs.UserNamespace, specs.PIDNamespace, specs.MountNamespace,
		specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.CgroupNamespace} {
		if !ns[want] {
			t.Errorf("no %s namespace", want)
		}
	}
	c := s.Process.Capabilities
	if len(c.Ambient) != 0 || len(c.Inheritable) != 0 || !s.Process.NoNewPrivileges || !s.Root.Readonly {
		t.Errorf("spec below the floor: caps %+v nnp %v ro %v", c, s.Process.NoNewPrivileges, s.Root.Readonly)
	}
	r := defaultSpec(true)
	if len(r.Linux.UIDMappings) != 1 || r.Linux.UIDMappings[0].HostID != uint32(os.Geteuid()) {
		t.Errorf("rootless mappings %+v", r.Linux.UIDMappings)
	}
}

func TestFeaturesDocument(t *testing.T) {
	f := runtimeFeatures()
	if f.OCIVersionMax != specs.Version || *f.Linux.Cgroup.Systemd || len(f.Linux.Capabilities) < 41 {
		t.Errorf("features %+v", f)
	}
	// go test's build is unstamped: the annotation is the stamp's, absent without one.
	if v, ok := f.Annotations["io.github.seccomp.libseccomp.version"]; v != sandbox.LibseccompVersion() || ok != (v != "") {
		t.Errorf("libseccomp version annotation %q (present %v), want %q", v, ok, sandbox.LibseccompVersion())
	}
}

// TestStepLaps: the CLI's own steps are timed from the end of the last step reported by anyone
// (or from main), so that with the sandbox's steps they add up to the command's wall time; without
// --debug nothing is kept.
func TestStepLaps(t *testing.T) {
	mainAt := time.Now()
	l, err := newLogger(filepath.Join(t.TempDir(), "log"), "text", true, mainAt)
	if err != nil {
		t.Fatal(err)
	}
	l.lapAt("cli:flags", mainAt.Add(2*time.Millisecond))
	l.lapAt("cli:log", mainAt.Add(5*time.Millisecond))
	before := time.Now()
	l.Step("c", "policy", time.Hour) // ends now: the next lap starts here, not at cli:log's end
	l.lap("cli:bundle")
	took := time.Since(before)
	if len(l.steps) != 4 || l.steps[0] != "cli:flags=2000000" || l.steps[1] != "cli:log=3000000" || l.steps[2] != "policy=3600000000000" {
		t.Fatalf("steps %q", l.steps)
	}
	name, ns, _ := strings.Cut(l.steps[3], "=")
	if d, err := time.ParseDuration(ns + "ns"); name != "cli:bundle" || err != nil || d > took {
		t.Errorf("lap after a reported step: %q (at most %v)", l.steps[3], took)
	}

	quiet, err := newLogger(filepath.Join(t.TempDir(), "log"), "text", false, mainAt)
	if err != nil {
		t.Fatal(err)
	}
	quiet.lap("cli:flags")
	quiet.Step("c", "policy", time.Second)
	if len(quiet.steps) != 0 {
		t.Errorf("steps kept without --debug: %q", quiet.steps)
	}
}

// TestSubcommandNames: each subcommand is listed under the name and aliases of the command it
// makes, once, so that a command line naming it makes it alone (lazycmd.AddSubs).
func TestSubcommandNames(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range subcommands(&cliContext{g: &globalOpts{}}) {
		c := s.Make()
		if want := append([]string{c.Name()}, c.Aliases...); !slices.Equal(s.Names, want) {
			t.Errorf("listed as %v, makes %v", s.Names, want)
		}
		for _, n := range s.Names {
			if seen[n] {
				t.Errorf("%s listed twice", n)
			}
			seen[n] = true
		}
	}
}
