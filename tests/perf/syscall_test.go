package perf

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

// getppidIters is the loop length per container run: long enough that the start-up is noise.
const getppidIters = 300_000

// BenchmarkGetppid measures ns per getppid(2) inside the sandbox with Bulwark's floor (its default
// seccomp allowlist, plus Landlock), inside runc with Docker's default profile, and inside runc
// without seccomp (the bare syscall). Runs are interleaved; each reports the median over b.N runs.
func BenchmarkGetppid(b *testing.B) {
	testenv.RequireRoot(b)
	bulwark := testenv.RuntimeBin(b)
	runc := lookPath(b, "runc")
	rootfs := testenv.BusyboxRootfs(b)
	prog := buildGetppid(b, rootfs)
	args := []string{prog, strconv.Itoa(getppidIters)}
	plain := bundleFor(b, rootfs, testenv.RuncSpec(args))
	docker := bundleFor(b, rootfs, hardened(b, testenv.RuncSpec(args)))
	cases := []runtimeCase{
		{"bulwark", bulwark, []string{"--root", runRoot(b)}, plain, bulwarkEnv(b)},
		{"runc-docker-seccomp", runc, []string{"--root", runRoot(b)}, docker, nil},
		{"runc-no-seccomp", runc, []string{"--root", runRoot(b)}, plain, nil},
	}
	ns := make(map[string][]float64)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range cases {
			c := cases[(i+j)%len(cases)]
			out, err := c.output(fmt.Sprintf("getppid-%s-%d", c.name, i))
			if err != nil {
				b.Fatal(err)
			}
			v, err := strconv.ParseFloat(strings.TrimSpace(out), 64)
			if err != nil {
				b.Fatalf("%s printed %q", c.name, out)
			}
			ns[c.name] = append(ns[c.name], v)
		}
	}
	b.StopTimer()
	var lines []string
	for _, c := range cases {
		m := median(ns[c.name])
		b.ReportMetric(m, c.name+"-ns/call")
		lines = append(lines, fmt.Sprintf("%-20s %6.1f ns per getppid()", c.name, m))
	}
	b.ReportMetric(median(ns["bulwark"])/median(ns["runc-docker-seccomp"]), "bulwark/docker")
	b.ReportMetric(0, "ns/op")
	// The testing package runs b.N=1 first; log only the real run (its log is cut at 10 lines).
	if b.N > 1 {
		b.Logf("getppid() cost inside the sandbox, median of %d runs of %d calls:\n%s", b.N, getppidIters,
			strings.Join(lines, "\n"))
	}
}

// buildGetppid builds the static loop program into the rootfs and returns its path inside.
func buildGetppid(b *testing.B, rootfs string) string {
	b.Helper()
	_, self, _, _ := runtime.Caller(0)
	cmd := exec.Command("go", "build", "-o", filepath.Join(rootfs, "bin", "getppid"), ".")
	cmd.Dir = filepath.Join(filepath.Dir(self), "getppid")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build getppid: %v\n%s", err, out)
	}
	return "/bin/getppid"
}
