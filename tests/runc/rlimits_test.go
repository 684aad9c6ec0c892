package runc

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

// TestRlimitRecordedIsApplied: asked for NOFILE 1048576 by a caller whose own hard limit is 20000
// (Docker's spec, a shell with a lower limit), the container gets 20000, and 20000 is what the
// raise in its state says, not 1048576.
func TestRlimitRecordedIsApplied(t *testing.T) {
	c, leaks := newCLI(t)
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skip("prlimit (util-linux) is needed to lower the runtime's own limit")
	}
	spec := testenv.Spec([]string{"/bin/sleep", "60"})
	spec.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1 << 20, Hard: 1 << 20}}
	bundle := testenv.Bundle(t, spec)
	leaks.Dir(bundle)
	id := leaks.Track(testenv.UniqueID(t))
	out, err := os.CreateTemp(c.io, "out-")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command("prlimit", "--nofile=20000:20000", "--", c.bin, "--root", c.root, "run", "--detach", "--bundle", bundle, id)
	cmd.Env, cmd.Stdout, cmd.Stderr = c.env, out, out
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(out.Name())
		t.Fatalf("run under prlimit: %v\n%s", err, b)
	}
	t.Cleanup(func() { c.run("delete", "--force", id) })
	recorded := ""
	for _, r := range c.state(id).Raises {
		if r.Field == "process.rlimits.RLIMIT_NOFILE" {
			recorded = r.To
		}
	}
	if recorded != "20000:20000" {
		t.Errorf("recorded NOFILE raise %q, want 20000:20000", recorded)
	}
	if got := strings.Fields(c.ok("exec", id, "/bin/sh", "-c", "ulimit -Sn; ulimit -Hn")); strings.Join(got, ":") != "20000:20000" {
		t.Errorf("applied NOFILE %v, want 20000:20000", got)
	}
}
