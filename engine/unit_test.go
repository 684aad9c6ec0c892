package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/policy"
	"bulwark.dev/bulwark/sandbox"
)

func TestBuildSpec(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte("root:x:0:0::/:/bin/sh\napp:x:1000:1001::/:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc", "group"), []byte("root:x:0:\nstaff:x:50:\n"), 0o644)
	cfg := ocispec.ImageConfig{Entrypoint: []string{"/entry"}, Cmd: []string{"serve"}, Env: []string{"PATH=/bin", "A=1"}, WorkingDir: "/srv", User: "app"}
	t.Setenv("FROM_CALLER", "x")
	req := &Request{Args: []string{"check"}, Env: []string{"A=2", "B=3", "FROM_CALLER", "UNSET_ONE"}, CapAdd: []string{"net_bind_service"}, CapDrop: []string{"ALL"},
		Memory: 64 << 20, PidsLimit: 10, CPUs: 0.5, Volumes: []string{"/srv/data:/data:ro", "/x:/y:rw"}, Tmpfs: []string{"/cache:size=1m"},
		Ulimits: []string{"nofile=100:200"}}
	s, profile, err := buildSpec(req, cfg, dirRoot(t, root), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Process.Args, " "); got != "/entry check" {
		t.Errorf("args %q", got)
	}
	if got := strings.Join(s.Process.Env, " "); got != "PATH=/bin A=2 B=3 FROM_CALLER=x" {
		t.Errorf("env %q", got)
	}
	if s.Process.Cwd != "/srv" || s.Process.User.UID != 1000 || s.Process.User.GID != 1001 || s.Hostname != "c1" {
		t.Errorf("cwd %s user %+v hostname %s", s.Process.Cwd, s.Process.User, s.Hostname)
	}
	if c := s.Process.Capabilities; c == nil || strings.Join(c.Bounding, ",") != "CAP_NET_BIND_SERVICE" {
		t.Errorf("caps %+v", c)
	}
	r := s.Linux.Resources
	if *r.Memory.Limit != 64<<20 || *r.Pids.Limit != 10 || *r.CPU.Quota != 50000 || *r.CPU.Period != 100000 {
		t.Errorf("resources %+v", r)
	}
	if len(s.Mounts) != 3 || s.Mounts[0].Type != "bind" || strings.Join(s.Mounts[0].Options, ",") != "rbind,ro" ||
		strings.Join(s.Mounts[1].Options, ",") != "rbind,rw" || s.Mounts[2].Type != "tmpfs" || !strings.Contains(strings.Join(s.Mounts[2].Options, ","), "size=1m") {
		t.Errorf("mounts %+v", s.Mounts)
	}
	if len(s.Process.Rlimits) != 1 || s.Process.Rlimits[0] != (specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Soft: 100, Hard: 200}) {
		t.Errorf("rlimits %+v", s.Process.Rlimits)
	}
	if profile != "default" || s.Linux.Seccomp != nil {
		t.Errorf("seccomp: profile %q", profile)
	}
	if len(s.Linux.Namespaces) != 7 || !s.Root.Readonly || !s.Process.NoNewPrivileges {
		t.Errorf("namespaces %v root %+v", s.Linux.Namespaces, s.Root)
	}

	// -u name:group and numeric ids; entrypoint override.
	s, _, err = buildSpec(&Request{User: "app:staff", Entrypoint: []string{"/bin/sh"}, Args: []string{"-c", "x"}}, cfg, dirRoot(t, root), "c2")
	if err != nil || s.Process.User.UID != 1000 || s.Process.User.GID != 50 || strings.Join(s.Process.Args, " ") != "/bin/sh -c x" {
		t.Errorf("user app:staff: %v %+v %v", err, s.Process.User, s.Process.Args)
	}
	s, profile, err = buildSpec(&Request{User: "5:6", Seccomp: "unconfined"}, cfg, dirRoot(t, root), "c3")
	if err != nil || s.Process.User.UID != 5 || s.Process.User.GID != 6 || profile != "unconfined" || s.Linux.Seccomp != nil {
		t.Errorf("user 5:6 unconfined: %v %+v %q", err, s.Process.User, profile)
	}
}

// dirRoot is an image root whose files are those of a plain directory.
func dirRoot(t *testing.T, dir string) *imageRoot {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &imageRoot{view: f}
}

func TestBuildSpecRejects(t *testing.T) {
	root := t.TempDir()
	cfg := ocispec.ImageConfig{Cmd: []string{"x"}}
	for _, req := range []*Request{
		{Volumes: []string{"rel/ative:/x"}}, {Volumes: []string{"name:/x:rx"}}, {Volumes: []string{"name:rel"}},
		{Volumes: []string{"/a"}},
		{Volumes: []string{"/a:/b:rx"}},
		{Tmpfs: []string{":size=1"}},
		{Ulimits: []string{"nofile"}},
		{Ulimits: []string{"nofile=10:5"}},
		{Workdir: "relative"},
		{User: "ghost"},
		{Seccomp: filepath.Join(root, "missing.json")},
	} {
		if _, _, err := buildSpec(req, cfg, dirRoot(t, root), "c"); err == nil {
			t.Errorf("%+v: no error", req)
		}
	}
	if _, _, err := buildSpec(&Request{}, ocispec.ImageConfig{}, dirRoot(t, root), "c"); err == nil {
		t.Error("an image without a command and no args: no error")
	}
}

func TestLogRotation(t *testing.T) {
	p := filepath.Join(t.TempDir(), "container.log")
	w, err := OpenLog(p, 200, 2)
	if err != nil {
		t.Fatal(err)
	}
	r, wr, _ := os.Pipe()
	go func() {
		for i := 0; i < 20; i++ {
			fmt.Fprintf(wr, "line %02d\n", i)
		}
		wr.Close()
	}()
	if err := w.Pump("stdout", r); err != nil {
		t.Fatal(err)
	}
	w.Close()
	for _, f := range []string{p, p + ".1", p + ".2"} {
		st, err := os.Stat(f)
		if err != nil || st.Size() > 200 {
			t.Errorf("%s: %v size %v", f, err, st)
		}
	}
	if _, err := os.Stat(p + ".3"); err == nil {
		t.Error("more files kept than maxFiles")
	}
	var got []string
	ReadLogs(p, 2, func(e LogEntry) error { got = append(got, strings.TrimSpace(e.Log)); return nil })
	if len(got) == 0 || got[len(got)-1] != "line 19" || got[0] == "line 00" {
		t.Errorf("entries after rotation: %v", got)
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Errorf("out of order: %v", got)
		}
	}
}

func TestExitStatus(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{
		{&DeniedError{}, 125},
		{ErrVerification, 125},
		{&sandbox.InitError{Step: "find executable", Errno: syscall.ENOENT}, 127},
		{&sandbox.InitError{Step: "find executable", Errno: syscall.EACCES}, 126},
		{&sandbox.InitError{Step: "find executable", Errno: syscall.E2BIG}, 126},
		{&sandbox.InitError{Step: "pivot_root", Errno: syscall.EPERM}, 125},
		{errors.New("x"), 125},
	} {
		if got := ExitStatus(fmt.Errorf("wrapped: %w", tc.err)); got != tc.code {
			t.Errorf("%v: %d, want %d", tc.err, got, tc.code)
		}
	}
}

func TestDeniedErrorListsEveryReason(t *testing.T) {
	e := &DeniedError{Decision: policy.Decision{Revision: "r1", Reasons: []policy.Reason{
		{Code: "A", Message: "first", Path: "p[0]"}, {Code: "B", Message: "second"}}}}
	want := "denied by policy (revision r1):\n  A: first [p[0]]\n  B: second"
	if e.Error() != want {
		t.Errorf("%q", e.Error())
	}
}

// TestCapSet: --cap-add and --cap-drop change Docker's default set with Docker's syntax.
func TestCapSet(t *testing.T) {
	for _, tc := range []struct {
		add, drop []string
		want      []string
		err       bool
	}{
		{want: DefaultCapabilities},
		{drop: []string{"ALL"}},
		{drop: []string{"all"}, add: []string{"chown"}, want: []string{"CAP_CHOWN"}},
		{drop: []string{"ALL"}, add: []string{"CAP_NET_BIND_SERVICE", "net_bind_service"}, want: []string{"CAP_NET_BIND_SERVICE"}},
		{drop: []string{"mknod", "Cap_Net_Raw", "CAP_SETFCAP", "setpcap", "SYS_CHROOT", "AUDIT_WRITE", "KILL"},
			want: []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_SETGID", "CAP_SETUID", "CAP_NET_BIND_SERVICE"}},
		{drop: []string{"CHOWNN"}, err: true},
		{add: []string{"FLY"}, err: true},
		{add: []string{"ALL"}, err: true},
	} {
		c, err := capSet(tc.add, tc.drop)
		if tc.err {
			if err == nil {
				t.Errorf("add %v drop %v: no error", tc.add, tc.drop)
			}
			continue
		}
		var got []string
		if c != nil {
			got = c.Bounding
			if !slices.Equal(c.Effective, got) || !slices.Equal(c.Permitted, got) || c.Inheritable != nil || c.Ambient != nil {
				t.Errorf("add %v drop %v: sets differ: %+v", tc.add, tc.drop, c)
			}
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("add %v drop %v: %v, %v; want %v", tc.add, tc.drop, got, err, tc.want)
		}
	}
}
