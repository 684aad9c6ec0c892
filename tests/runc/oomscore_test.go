package runc

import (
	"strings"
	"testing"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

// TestOOMScoreAdj: the score a spec asks for (Docker writes one into every spec) is init's and an
// exec'd process's, though neither can open its own oom_score_adj once it is in the container's
// user namespace: the runtime sets it from outside. Init's failed with EACCES when its user
// namespace came to be joined rather than created (docker run --runtime bulwark: "step
// oom_score_adj ... permission denied").
func TestOOMScoreAdj(t *testing.T) {
	c, leaks := newCLI(t)
	spec := testenv.Spec([]string{"/bin/sleep", "60"})
	score := 300
	spec.Process.OOMScoreAdj = &score
	bundle := testenv.Bundle(t, spec)
	leaks.Dir(bundle)
	id := leaks.Track(testenv.UniqueID(t))
	c.ok("run", "--detach", "--bundle", bundle, id)
	t.Cleanup(func() { c.run("delete", "--force", id) })
	if got := strings.TrimSpace(c.ok("exec", id, "/bin/cat", "/proc/1/oom_score_adj", "/proc/self/oom_score_adj")); got != "300\n300" {
		t.Errorf("init's and the exec'd process's oom_score_adj: %q, want 300 and 300", got)
	}
}
