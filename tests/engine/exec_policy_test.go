package engine

import (
	"os/exec"
	"path/filepath"
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

// TestExecDecisionDurableFirst: an exec's decision is on the audit log before the process it
// allows runs. With the log's segments immutable (every append fails) the exec is refused and its
// command never runs; the old exec started the process and only then found it could not record it.
func TestExecDecisionDurableFirst(t *testing.T) {
	f := newFixture(t)
	id := f.name(t, "execaudit")
	clitest.Must(t, f.root, "run", "-d", "--name", id, "busybox:1", "sleep", "60")
	defer clitest.Run(t, f.root, "rm", "-f", id)

	segments, err := filepath.Glob(filepath.Join(f.root, "audit", "audit-*.jsonl"))
	if err != nil || len(segments) == 0 {
		t.Fatalf("audit segments: %v %v", segments, err)
	}
	chattr := func(flag string) {
		if out, err := exec.Command("chattr", append([]string{flag}, segments...)...).CombinedOutput(); err != nil {
			t.Fatalf("chattr %s: %v %s", flag, err, out)
		}
	}
	chattr("+i")
	t.Cleanup(func() { chattr("-i") })
	if r := clitest.Run(t, f.root, "exec", id, "sh", "-c", "echo > /tmp/ran"); r.Code == 0 {
		t.Errorf("exec with an audit log that takes no append succeeded: %q", r.Stdout)
	}
	chattr("-i")
	if r := clitest.Run(t, f.root, "exec", id, "sh", "-c", "test -e /tmp/ran"); r.Code == 0 {
		t.Error("the refused exec's command ran: /tmp/ran exists")
	}
}
