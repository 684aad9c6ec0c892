package runc

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

// TestKillStoppedContainer: runc's kill semantics, which containerd's shim relies on (issue 15).
// kill --all of a stopped container succeeds (the shim sends it on every StopPodSandbox and
// `ctr task rm -f`; exit 1 hung them until their timeout); a plain kill of it exits 1 with runc's
// "container not running" (Debian's runc 1.1.5 prints exactly that), which the shim matches to
// treat the process as already finished.
func TestKillStoppedContainer(t *testing.T) {
	c, leaks := newCLI(t)
	bundle := testenv.Bundle(t, sleeper())
	leaks.Dir(bundle)
	id := leaks.Track(testenv.UniqueID(t))
	c.ok("run", "--detach", "--bundle", bundle, id)
	t.Cleanup(func() { c.run("delete", "--force", id) })
	c.waitStatus(id, specs.StateRunning)
	c.ok("kill", id, "KILL")
	c.waitStatus(id, specs.StateStopped)

	for _, sig := range []string{"KILL", "TERM"} {
		if r := c.run("kill", "--all", id, sig); r.code != 0 {
			t.Errorf("kill --all %s of a stopped container: exit %d, stderr %q; want 0", sig, r.code, r.stderr)
		}
	}
	log := filepath.Join(t.TempDir(), "log.json")
	r := c.run("--log", log, "--log-format", "json", "kill", id, "KILL")
	if r.code != 1 || !strings.Contains(r.stderr, "container not running") {
		t.Errorf("plain kill of a stopped container: exit %d, stderr %q; want 1 and \"container not running\"", r.code, r.stderr)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var last struct{ Level, Msg string }
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.Level != "error" ||
		!strings.Contains(last.Msg, "container not running") {
		t.Errorf("log's last line %q (%v): want an error naming \"container not running\"", lines[len(lines)-1], err)
	}
	c.ok("delete", id)
	// A deleted container is missing, not "not running": kill --all of it still fails.
	if r := c.run("kill", "--all", id, "KILL"); r.code != 1 || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("kill --all of a deleted container: %+v", r)
	}
}
