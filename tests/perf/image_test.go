package perf

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

// BenchmarkRunImage compares `bulwark run --rm IMAGE true` (TUF resolution, the image's verified
// layers, the policy decision, the supervisor's watch, the audit trail and the sandbox) with
// `bulwark-runc run` of a bundle on the same rootfs the image was made of, interleaved in every
// iteration, and reports both medians and their ratio (issue 14: at most 1.3). Each has its own
// state root, kept across iterations as a host's would be (decisions and verified layers cached).
func BenchmarkRunImage(b *testing.B) {
	testenv.RequireRoot(b)
	runcBin := testenv.RuntimeBin(b)
	rootfs := testenv.BusyboxRootfs(b)
	cli, state := imageHost(b, runcBin, rootfs)
	runc := runtimeCase{"bulwark-runc", runcBin, []string{"--root", runRoot(b)},
		bundleFor(b, rootfs, testenv.RuncSpec([]string{"/bin/true"})), bulwarkEnv(b)}
	var run, rc []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		first, second := "run", "runc"
		if i%2 == 1 {
			first, second = second, first
		}
		for _, which := range []string{first, second} {
			if which == "run" {
				d, err := cli("run", "--rm", "bench:1", "true")
				if err != nil {
					b.Fatal(err)
				}
				run = append(run, ms(d))
				continue
			}
			d, err := runc.run(fmt.Sprintf("bench-image-%d", i))
			if err != nil {
				b.Fatal(err)
			}
			rc = append(rc, ms(d))
		}
	}
	b.StopTimer()
	mRun, mRunc := median(run), median(rc)
	b.ReportMetric(mRun, "run-ms")
	b.ReportMetric(mRunc, "bulwark-runc-ms")
	b.ReportMetric(mRun/mRunc, "run/bulwark-runc")
	b.ReportMetric(0, "ns/op")
	record("run/runc", mRun/mRunc)
	if b.N > 1 {
		// Where bulwark run's time goes (engine/steps.go names the steps), TUF's share with it.
		bd, err := collectSteps(min(b.N, breakdownRuns), func(log string) (time.Duration, error) {
			return cli("run", "--rm", "--steps-log", log, "bench:1", "true")
		})
		if err != nil {
			b.Fatal(err)
		}
		recordShare("tuf%", bd, "tuf")
		steps := bd.lines("bulwark-runc", mRunc)
		steps[0] = strings.NewReplacer("bulwark-runc per step", "bulwark run per step", "--debug", "--steps-log").Replace(steps[0])
		fmt.Printf("bulwark run --rm IMAGE true vs bulwark-runc run, %d interleaved runs each:\n"+
			"bulwark run    median %6.1f ms\nbulwark-runc   median %6.1f ms   run/bulwark-runc = %.2f\n%s\n",
			b.N, mRun, mRunc, mRun/mRunc, strings.Join(steps, "\n"))
	}
	// The state root's supervisor leaves once idle; wait for it so the temp dir can go.
	waitSupervisorGone(state)
}

// imageHost makes a state root holding the image bench:1 of rootfs, imported and signed, and
// returns a function that runs the bulwark CLI on it and the state root.
func imageHost(b *testing.B, runcBin, rootfs string) (func(args ...string) (time.Duration, error), string) {
	tar := filepath.Join(b.TempDir(), "rootfs.tar")
	if out, err := exec.Command("tar", "-C", rootfs, "-cf", tar, ".").CombinedOutput(); err != nil {
		b.Fatalf("tar the rootfs: %v\n%s", err, out)
	}
	return imageHostTar(b, runcBin, tar, "bench:1")
}

// imageHostTar is imageHost for the image tag of a rootfs tarball.
func imageHostTar(b *testing.B, runcBin, tar, tag string) (func(args ...string) (time.Duration, error), string) {
	bulwark := filepath.Join(filepath.Dir(runcBin), "bulwark")
	// Its persistent state on disk, its per-run state (--run-root) on tmpfs, as bulwark-runc's
	// --root is (runRoot).
	state, run := filepath.Join(b.TempDir(), "state"), runRoot(b)
	cli := func(args ...string) (time.Duration, error) {
		cmd := exec.Command(bulwark, append([]string{"--root", state, "--run-root", run}, args...)...)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		d := time.Since(start)
		if err != nil {
			return d, fmt.Errorf("bulwark %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return d, nil
	}
	for _, args := range [][]string{{"image", "import", tar, "--tag", tag}, {"trust", "init"}, {"trust", "sign", tag}} {
		if _, err := cli(args...); err != nil {
			b.Fatal(err)
		}
	}
	return cli, state
}

// waitSupervisorGone waits (a few seconds at most) until no process runs from the state root's
// supervisor, which leaves on its own once no container is left.
func waitSupervisorGone(state string) {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if !supervisorRunning(state) {
			return
		}
	}
}

func supervisorRunning(state string) bool {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), state) {
			return true
		}
	}
	return false
}
