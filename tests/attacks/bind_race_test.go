package attacks

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

// Issue 8 §1: policy decided on a bind source's resolved path, and the sandbox walked the path
// again (open_tree(AT_FDCWD, src)). Swapping a directory component of the source for a symlink to
// / in between mounted host /etc where a harmless directory had been allowed (31 of 200 runs).
// Now each source is resolved once into a descriptor: what is decided is what is mounted. A run
// may be allowed (the harmless directory mounted) or denied (policy saw /etc), never both.

func TestBindSourceRaceRunc(t *testing.T) {
	testenv.RequireRoot(t)
	bin := testenv.RuntimeBin(t)
	root, stateRoot, io := t.TempDir(), t.TempDir(), t.TempDir()
	leaks := testenv.NewLeaks(t, root)
	race := t.TempDir()
	spec := testenv.Spec([]string{"/bin/ls", "/mnt"}, testenv.WithMount(specs.Mount{
		Destination: "/mnt", Type: "bind", Source: filepath.Join(race, "dir", "etc"), Options: []string{"rbind", "ro"},
	}))
	bundle := testenv.Bundle(t, spec)
	pol := testenv.BindPolicy(t, race) // binds are deny-by-default; the swapped path resolves to /etc
	stop := testenv.SwapDirWithRootLink(t, race)
	defer stop()

	var o testenv.RaceOutcome
	n := testenv.RaceRuns(t, 150)
	for i := range n {
		id := leaks.Track("race-" + strconv.Itoa(i))
		out, err := os.CreateTemp(io, "out-")
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd := exec.Command(bin, "--root", root, "--policy", pol, "run", "--bundle", bundle, id)
		cmd.Env = append(os.Environ(), "BULWARK_STATE_ROOT="+stateRoot)
		cmd.Stdout, cmd.Stderr = out, &stderr
		code := 0
		if err := cmd.Run(); err != nil {
			ee, ok := err.(*exec.ExitError)
			if !ok {
				t.Fatal(err)
			}
			code = ee.ExitCode()
		}
		b, _ := os.ReadFile(out.Name())
		out.Close()
		o.Add(t, code, string(b), stderr.String())
		if code == 0 {
			continue
		}
		// A failed run may leave its container for delete (as runc does).
		exec.Command(bin, "--root", root, "delete", "--force", id).Run()
	}
	stop()
	o.Check(t, "bulwark-runc run")
	leaks.AssertNone(t)
}
