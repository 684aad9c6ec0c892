package perf

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

// BenchmarkExec measures `exec <id> /bin/true` into a running, sleeping container: bulwark-runc
// (the container's whole confinement again, and a policy decision), runc and crun (the same
// bundle, as is), and `bulwark exec` of a container `bulwark run -d` started from an image of the
// same rootfs; interleaved in every iteration, medians and ratios to runc's and crun's.
func BenchmarkExec(b *testing.B) {
	testenv.RequireRoot(b)
	runcBin := testenv.RuntimeBin(b)
	rootfs := testenv.BusyboxRootfs(b)
	sleeping := bundleFor(b, rootfs, testenv.RuncSpec([]string{"/bin/sleep", "3600"}))
	cases := []runtimeCase{
		{"bulwark-runc", runcBin, []string{"--root", runRoot(b)}, sleeping, bulwarkEnv(b)},
		{"runc", lookPath(b, "runc"), []string{"--root", runRoot(b)}, sleeping, nil},
		{"crun", lookPath(b, "crun"), []string{"--root", runRoot(b)}, sleeping, nil},
	}
	for _, c := range cases {
		if err := c.detached("create", "--bundle", c.bundle, "bench-exec"); err != nil {
			b.Fatal(err)
		}
		defer c.detached("delete", "--force", "bench-exec") //nolint:errcheck // best effort at the end
		if err := c.detached("start", "bench-exec"); err != nil {
			b.Fatal(err)
		}
	}
	cli, state := imageHost(b, runcBin, rootfs)
	// Its own name: a container's default cgroup is bulwark/<id>, and another root's container of
	// the same id is refused it (the runtimes' bench-exec above has it).
	if _, err := cli("run", "-d", "--name", "bench-exec-run", "bench:1", "sleep", "3600"); err != nil {
		b.Fatal(err)
	}
	defer waitSupervisorGone(state)
	defer cli("rm", "-f", "bench-exec-run") //nolint:errcheck // best effort at the end

	names := []string{"bulwark exec"}
	for _, c := range cases {
		names = append(names, c.name)
	}
	times := map[string][]float64{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range names {
			name := names[(i+j)%len(names)]
			var d time.Duration
			var err error
			if name == "bulwark exec" {
				d, err = cli("exec", "bench-exec-run", "true")
			} else {
				c := cases[slices.IndexFunc(cases, func(c runtimeCase) bool { return c.name == name })]
				d, err = c.timed("exec", "bench-exec", "/bin/true")
			}
			if err != nil {
				b.Fatal(err)
			}
			times[name] = append(times[name], ms(d))
		}
	}
	b.StopTimer()
	med := map[string]float64{}
	for _, n := range names {
		med[n] = median(times[n])
		b.ReportMetric(med[n], strings.ReplaceAll(n, " ", "-")+"-ms")
	}
	b.ReportMetric(med["bulwark-runc"]/med["runc"], "bulwark-runc/runc")
	record("exec/runc", med["bulwark exec"]/med["runc"])
	record("runc-exec/runc", med["bulwark-runc"]/med["runc"])
	b.ReportMetric(0, "ns/op")
	if b.N > 1 {
		lines := []string{fmt.Sprintf("exec of /bin/true in a running container, %d interleaved runs each:", b.N)}
		for _, n := range names {
			lines = append(lines, fmt.Sprintf("%-14s median %6.1f ms   /runc = %.2f   /crun = %.2f", n, med[n], med[n]/med["runc"], med[n]/med["crun"]))
		}
		if bd, err := execBreakdown(cases[0], min(b.N, breakdownRuns)); err == nil {
			lines = append(lines, bd.lines("runc", med["runc"])...)
		} else {
			b.Fatal(err)
		}
		fmt.Println(strings.Join(lines, "\n"))
	}
}

// detached runs `<runtime> args...` with stdio on /dev/null (a created container keeps what it is
// given open).
func (r runtimeCase) detached(args ...string) error {
	_, err := r.timed(args...)
	return err
}

// timed runs `<runtime> <global flags> args...` with stdio on /dev/null and returns the wall time.
func (r runtimeCase) timed(args ...string) (time.Duration, error) {
	cmd := exec.Command(r.bin, append(slices.Clone(r.args), args...)...)
	cmd.Env = append(cmd.Environ(), r.env...)
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return d, fmt.Errorf("%s %v: %v", r.bin, cmd.Args[1:], err)
	}
	return d, nil
}

// execBreakdown is stepBreakdown for `bulwark-runc exec bench-exec /bin/true`.
func execBreakdown(c runtimeCase, n int) (*breakdown, error) {
	return collectSteps(n, func(log string) (time.Duration, error) {
		dc := c
		dc.args = append(slices.Clone(c.args), "--debug", "--log", log)
		return dc.timed("exec", "bench-exec", "/bin/true")
	})
}
