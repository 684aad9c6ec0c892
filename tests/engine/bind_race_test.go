package engine

import (
	"path/filepath"
	"testing"

	"bulwark.dev/bulwark/tests/internal/clitest"
	"bulwark.dev/bulwark/tests/internal/testenv"
)

// Issue 8 §1, through `bulwark run -v`: while a directory component of the source is swapped
// between a real directory and a symlink to /, a run mounts the directory policy allowed or is
// denied /etc; it never mounts the host's /etc (25 of 100 runs did when the sandbox walked the
// path again after the decision).
func TestBindSourceRaceRun(t *testing.T) {
	f := newFixture(t)
	race := t.TempDir()
	pol := testenv.BindPolicy(t, race) // binds are deny-by-default; the swapped path resolves to /etc
	stop := testenv.SwapDirWithRootLink(t, race)
	defer stop()
	var o testenv.RaceOutcome
	for range testenv.RaceRuns(t, 50) {
		r := clitest.Run(t, f.root, "run", "--rm", "--policy-dir", pol, "--name", f.name(t, "race"),
			"-v", filepath.Join(race, "dir", "etc")+":/mnt", "busybox:1", "ls", "/mnt")
		o.Add(t, r.Code, r.Stdout, r.Stderr)
	}
	stop()
	o.Check(t, "bulwark run -v")
	f.leaks.AssertNone(t)
}
