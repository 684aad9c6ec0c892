package engine

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"bulwark.dev/bulwark/tests/internal/clitest"
)

// TestKillDuringRun: `bulwark run` SIGKILLed at points spread over its run leaves a container
// that ps -a lists with its real state, and rm tells the truth: a container whose init never ran
// or is gone is stopped and removed by a plain rm (it used to be called "running"); one whose
// workload really ran is killed with its client by the supervisor (issue 10: it used to run on,
// untracked) and then removed by a plain rm; one created but never started is refused without
// -f; a name claimed by a run killed before it wrote the record is removed by the next ps.
func TestKillDuringRun(t *testing.T) {
	f := newFixture(t)
	for i := range 10 {
		id := f.name(t, fmt.Sprintf("kill%d", i))
		cmd := exec.Command(clitest.Bin, "--root", f.root, "run", "--name", id, "busybox:1", "sleep", "100")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(i) * 15 * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		r := clitest.Run(t, f.root, "inspect", id)
		if r.Code != 0 {
			// Killed before the container had a record: at most a claimed name is left, which
			// the next ps removes.
			clitest.Must(t, f.root, "ps", "-a")
			if _, err := os.Stat(filepath.Join(f.root, "engine", id)); !os.IsNotExist(err) {
				t.Errorf("kill after %d ms: a name claimed without a record stays after ps: %v", i*15, err)
			}
			continue
		}
		st := inspect(t, f, id).Status
		if !strings.Contains(clitest.Must(t, f.root, "ps", "-a"), id) {
			t.Errorf("kill after %d ms: %s (%s) not in ps -a", i*15, id, st)
		}
		if st == "running" {
			waitFor(t, func() bool { return inspect(t, f, id).Exit != nil })
			if c := inspect(t, f, id); c.Status != "stopped" {
				t.Errorf("kill after %d ms: the workload of a killed run is %s", i*15, c.Status)
			}
			st = "stopped"
		}
		r = clitest.Run(t, f.root, "rm", id)
		if r.Code != 0 && strings.Contains(r.Stderr, "is creating") {
			// A creation still under its lock (the killed run's children on their way out) is
			// refused while it lasts: it settles within moments, and a plain rm then removes it.
			waitFor(t, func() bool {
				r = clitest.Run(t, f.root, "rm", id)
				return !strings.Contains(r.Stderr, "is creating")
			})
		}
		switch {
		case st == "created":
			// Refused while it stands created; the supervisor may have collected it meanwhile.
			if r.Code != 0 {
				if !strings.Contains(r.Stderr, "is "+st) {
					t.Errorf("kill after %d ms: rm of a %s container: exit %d %s", i*15, st, r.Code, r.Stderr)
				}
				clitest.Must(t, f.root, "rm", "-f", id)
			}
		case r.Code != 0:
			t.Errorf("kill after %d ms: rm of a %s container: exit %d %s", i*15, st, r.Code, r.Stderr)
		}
	}
	f.assertNothingLeft(t)
}
