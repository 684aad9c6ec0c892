package engine

import (
	"strings"
	"testing"

	"bulwark.dev/bulwark/tests/internal/clitest"
	"bulwark.dev/bulwark/tests/internal/testenv"
)

// TestExecUnderTheRunsPolicy: a container run under an operator's policy is exec'd under that
// policy, never silently under the embedded default (the old exec had no policy flags at all).
func TestExecUnderTheRunsPolicy(t *testing.T) {
	f := newFixture(t)
	pol := testenv.BindPolicy(t, t.TempDir())
	id := f.name(t, "execpol")
	clitest.Must(t, f.root, "run", "-d", "--policy-dir", pol, "--name", id, "busybox:1", "sleep", "60")
	defer clitest.Run(t, f.root, "rm", "-f", id)

	r := clitest.Run(t, f.root, "exec", id, "true")
	if r.Code == 0 || !strings.Contains(r.Stderr, "exec it under the same policy (--policy-dir "+pol+")") {
		t.Errorf("exec without the run's policy: exit %d, stderr %q; want a refusal naming --policy-dir %s", r.Code, r.Stderr, pol)
	}
	if out := clitest.Must(t, f.root, "exec", "--policy-dir", pol, id, "echo", "same"); strings.TrimSpace(out) != "same" {
		t.Errorf("exec under the run's policy printed %q", out)
	}
	other := testenv.BindPolicy(t, t.TempDir())
	if r := clitest.Run(t, f.root, "exec", "--policy-dir", other, id, "true"); r.Code == 0 {
		t.Errorf("exec under another policy dir succeeded: %q", r.Stdout)
	}
}
