package engine

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"bulwark.dev/bulwark/tests/internal/clitest"
	"bulwark.dev/bulwark/tests/internal/testenv"
)

// TestTenantCannotDriveAnothersContainer is the regression for issue 8 §2 through bulwark: stop,
// exec, kill, rm and the rest checked nothing (the caller was audited, never compared with the
// owner). Now every command of tenant bob on the default tenant's container gets exactly what it
// gets for a missing container (exit code and output, the name aside), the container is
// untouched, each refusal is audited, and ps shows each tenant its own containers only. (The
// owner is the default tenant because exec decides with the embedded policy, which knows no
// other.)
func TestTenantCannotDriveAnothersContainer(t *testing.T) {
	f := newFixture(t)
	pol := filepath.Join(f.dir, "policy")
	if err := os.MkdirAll(pol, 0o755); err != nil {
		t.Fatal(err)
	}
	data := `{"bulwark": {"tenants": {"default": {}, "bob": {"max_memory": 1073741824, "max_pids": 1024}}}}`
	if err := os.WriteFile(filepath.Join(pol, "data.json"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	theirs, bobs := f.name(t, "owner"), f.name(t, "bob")
	missing := strings.Replace(theirs, "owner", "nadie", 1)
	clitest.Must(t, f.root, "run", "-d", "--name", theirs, "busybox:1", "sleep", "60")
	t.Cleanup(func() { clitest.Run(t, f.root, "rm", "-f", theirs) })
	clitest.Must(t, f.root, "run", "-d", "--policy-dir", pol, "--tenant", "bob", "--name", bobs, "busybox:1", "sleep", "60")
	t.Cleanup(func() { clitest.Run(t, f.root, "rm", "-f", "--tenant", "bob", bobs) })

	ops := []struct {
		args   []string
		action string // the operation the audit names
	}{
		{[]string{"inspect"}, "inspect"}, {[]string{"logs"}, "logs"}, {[]string{"stats"}, "stats"},
		{[]string{"exec", "{}", "echo", "pwned"}, "exec"}, {[]string{"exec", "-u", "0", "{}", "id"}, "exec"},
		{[]string{"pause"}, "pause"}, {[]string{"unpause"}, "resume"}, {[]string{"kill"}, "signal"},
		{[]string{"stop", "-t", "1"}, "stop"}, {[]string{"rm", "-f"}, "remove"},
	}
	var want []string
	for _, op := range ops {
		args := func(id string) []string {
			out := []string{op.args[0], "--tenant", "bob"}
			placed := false
			for _, a := range op.args[1:] {
				if a == "{}" {
					a, placed = id, true
				}
				out = append(out, a)
			}
			if !placed {
				out = append(out, id)
			}
			return out
		}
		foreign, absent := clitest.Run(t, f.root, args(theirs)...), clitest.Run(t, f.root, args(missing)...)
		norm := func(s, id string) string { return strings.ReplaceAll(s, id, "ID") }
		if foreign.Code != absent.Code || norm(foreign.Stdout, theirs) != norm(absent.Stdout, missing) ||
			norm(foreign.Stderr, theirs) != norm(absent.Stderr, missing) {
			t.Errorf("bob: %v on the default tenant's container: exit %d, stdout %q, stderr %q\n"+
				"on a missing container: exit %d, stdout %q, stderr %q",
				op.args, foreign.Code, foreign.Stdout, foreign.Stderr, absent.Code, absent.Stdout, absent.Stderr)
		}
		want = append(want, op.action)
	}

	// The container still runs and answers to its owner.
	if out := clitest.Must(t, f.root, "inspect", theirs); !strings.Contains(out, `"status": "running"`) {
		t.Errorf("the container after bob's attempts:\n%s", out)
	}
	if out := clitest.Must(t, f.root, "exec", theirs, "echo", "mine"); strings.TrimSpace(out) != "mine" {
		t.Errorf("the owner's exec = %q", out)
	}
	for tenant, own := range map[string]string{"default": theirs, "bob": bobs, "nobody-here": ""} {
		if out := strings.TrimSpace(clitest.Must(t, f.root, "ps", "-a", "-q", "--tenant", tenant)); out != own {
			t.Errorf("%s: ps -a -q = %q, want %q", tenant, out, own)
		}
	}

	// Each refusal is audited under bob's tenant, naming the operation; the missing container
	// has no records at all.
	var got []string
	for _, r := range f.records(t, theirs) {
		if r["action"] != "access.refused" {
			continue
		}
		if r["tenant"] != "bob" || attr(r, "owner") != "default" {
			t.Errorf("refusal record %v", r)
		}
		got = append(got, attr(r, "operation"))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("audited refusals %v, want %v", got, want)
	}
	if recs := f.records(t, missing); len(recs) != 0 {
		t.Errorf("records of a missing container: %v", recs)
	}
	clitest.Must(t, f.root, "audit", "verify")

	clitest.Must(t, f.root, "rm", "-f", theirs)
	clitest.Must(t, f.root, "rm", "-f", "--tenant", "bob", bobs)
	f.assertNothingLeft(t)
}

// TestNonRootRefused: a non-root caller of bulwark gets one clear error before anything is
// decided or written (it got a permission error from whatever step came first, after creating
// directories under a state root it could write to).
func TestNonRootRefused(t *testing.T) {
	testenv.RequireRoot(t)
	bin := testenv.ExecutableCopy(t, clitest.Bin)
	root := testenv.OpenDir(t, 0o777) // world-writable: only the check can keep it empty
	for _, args := range [][]string{
		{"ps"}, {"run", "busybox:1", "true"}, {"image", "ls"}, {"trust", "status"}, {"audit", "verify"},
		{"policy", "show"}, {"inspect", "c1"}, {"exec", "c1", "true"}, {"stop", "c1"}, {"rm", "-f", "c1"},
	} {
		cmd := testenv.AsNobody(exec.Command(bin, append([]string{"--root", root}, args...)...))
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		want := "bulwark: needs root (or the daemon): running as uid 65534;"
		if !errors.As(err, &ee) || ee.ExitCode() != 125 || stdout.Len() != 0 ||
			!strings.HasPrefix(stderr.String(), want) || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("%v as nobody: %v\nstdout %q\nstderr %q\nwant exit 125 and one line %q...", args, err, stdout.String(), stderr.String(), want)
		}
	}
	if ents, _ := os.ReadDir(root); len(ents) != 0 {
		t.Errorf("a non-root caller wrote under the state root: %v", ents)
	}
	if out, err := testenv.AsNobody(exec.Command(bin, "help")).CombinedOutput(); err != nil || !strings.Contains(string(out), "Usage:") {
		t.Errorf("help as nobody: %v\n%s", err, out)
	}
}
