package runc

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

// TestNonRootRefused is the regression for issue 8 §2's last point: a non-root caller got
// whatever error the first privileged step produced, after writing under a state root it could
// write to (list printed an empty table and created containers/). Now every command that decides
// or touches state fails first, with one clear line, and writes nothing: not the state root, not
// the persistent state root, not even the --log file.
func TestNonRootRefused(t *testing.T) {
	testenv.RequireRoot(t)
	bin := testenv.ExecutableCopy(t, testenv.RuntimeBin(t))
	// World-writable, so that only the check (not a permission error) can keep them empty.
	root, stateRoot, logDir := testenv.OpenDir(t, 0o777), testenv.OpenDir(t, 0o777), testenv.OpenDir(t, 0o777)
	bundle := testenv.Bundle(t, sleeper())
	for _, args := range [][]string{
		{"list"}, {"state", "c1"}, {"create", "--bundle", bundle, "c1"}, {"run", "--bundle", bundle, "c1"},
		{"exec", "c1", "/bin/true"}, {"kill", "c1", "KILL"}, {"pause", "c1"}, {"delete", "--force", "c1"},
		{"ps", "c1"},
	} {
		cmd := testenv.AsNobody(exec.Command(bin, append([]string{"--root", root, "--state-root", stateRoot,
			"--log", filepath.Join(logDir, "log.json"), "--log-format", "json"}, args...)...))
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		want := "bulwark-runc: needs root (or the daemon): running as uid 65534;"
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || stdout.Len() != 0 ||
			!strings.HasPrefix(stderr.String(), want) || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("%v as nobody: %v\nstdout %q\nstderr %q\nwant exit 1 and one line %q...", args, err, stdout.String(), stderr.String(), want)
		}
	}
	for _, d := range []string{root, stateRoot, logDir} {
		if ents, _ := os.ReadDir(d); len(ents) != 0 {
			t.Errorf("a non-root caller wrote under %s: %v", d, ents)
		}
	}
	// help and features decide nothing and touch no state: anyone may run them, as with runc.
	for args, want := range map[string]string{"help": "Usage:", "features": "ociVersionMax"} {
		if out, err := testenv.AsNobody(exec.Command(bin, args)).CombinedOutput(); err != nil || !strings.Contains(string(out), want) {
			t.Errorf("%s as nobody: %v\n%s", args, err, out)
		}
	}
}
