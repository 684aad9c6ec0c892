package perf

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

// bigTarEnv names the rootfs tarball of a realistic Debian 12 image (about 460 MB: python3,
// nginx, redis, postgresql) for BenchmarkBigImageFirstOutput and BenchmarkBigImageRun. They are opt-in: they need
// the tarball, which mmdebstrap builds from the Debian mirror in about 40 s when the named file
// does not exist yet (and keeps there for the next run):
//
//	BULWARK_PERF_BIG_TAR=/var/tmp/debian12.tar make perf
//	BULWARK_PERF_BIG_TAR=/var/tmp/debian12.tar BULWARK_BIN=$PWD/bin go test -run '^$' -bench BigImage -benchtime 20x ./tests/perf/
const bigTarEnv = "BULWARK_PERF_BIG_TAR"

// bigImageTar returns the tarball bigTarEnv names, building it with mmdebstrap if it is missing,
// and skips b without the variable.
func bigImageTar(b *testing.B) string {
	b.Helper()
	tar := os.Getenv(bigTarEnv)
	if tar == "" {
		b.Skip(bigTarEnv + "=/path/to/debian12.tar runs the 460 MB image benchmark (built there with mmdebstrap if missing)")
	}
	if _, err := os.Stat(tar); err == nil {
		return tar
	}
	mm, err := exec.LookPath("mmdebstrap")
	if err != nil {
		b.Skipf("%s missing and no mmdebstrap to build it (apt-get install mmdebstrap)", tar)
	}
	sources, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	if len(sources) == 0 {
		b.Skip("no /etc/apt/sources.list.d/*.sources for mmdebstrap")
	}
	tmp := tar + ".tmp"
	cmd := exec.Command(mm, "--format=tar", "--variant=minbase", "--include=python3,nginx-light,redis-server,postgresql-15,busybox",
		"bookworm", tmp, sources[0])
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		b.Fatalf("mmdebstrap: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, tar); err != nil {
		b.Fatal(err)
	}
	return tar
}

// overlayRootfs unpacks tar into a lower directory (its /dev nodes left out: every runtime
// mounts its own /dev) and mounts an overlay of it with its own upper, as containerd's overlayfs
// snapshotter and Docker's overlay2 hand a runtime its rootfs; one per runtime, unmounted when b
// ends.
func overlayRootfs(b *testing.B, lower string) string {
	b.Helper()
	dir := b.TempDir()
	if err := os.Chmod(dir, 0o711); err != nil {
		b.Fatal(err)
	}
	upper, work, merged := filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "rootfs")
	for _, d := range []string{upper, work, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	if err := unix.Mount("overlay", merged, "overlay", 0, "lowerdir="+lower+",upperdir="+upper+",workdir="+work); err != nil {
		b.Fatalf("overlay: %v", err)
	}
	b.Cleanup(func() { unix.Unmount(merged, unix.MNT_DETACH) })
	return merged
}

// firstOutput runs `<runtime> run --bundle B id` and returns the time until the container's
// first line of output, then waits for it to exit.
func (r runtimeCase) firstOutput(id string) (time.Duration, error) {
	args := append(slices.Clone(r.args), "run", "--bundle", r.bundle, id)
	cmd := exec.Command(r.bin, args...)
	cmd.Env = append(os.Environ(), r.env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	line, rerr := bufio.NewReader(out).ReadString('\n')
	d := time.Since(start)
	err = cmd.Wait()
	if err == nil && rerr != nil {
		err = rerr
	}
	if err == nil && line != "ready\n" {
		err = fmt.Errorf("first line %q", line)
	}
	if err != nil {
		return d, fmt.Errorf("%s %v: %v\n%s", r.bin, args, err, stderr.String())
	}
	return d, nil
}

// BenchmarkBigImageFirstOutput (issue 12): time to first output of python3 from a ~460 MB
// Debian 12 image on an overlay rootfs, bulwark-runc (its whole floor: the overlay rebuilt from
// idmapped layers, user namespace, seccomp, Landlock, policy) against runc as is, interleaved in
// one run, medians and their ratio. Nothing is copied per container by either: the point is that
// the image's size does not enter Bulwark's start (vfs copied the image per container: 3.7 s).
// Opt-in (bigTarEnv).
func BenchmarkBigImageFirstOutput(b *testing.B) {
	testenv.RequireRoot(b)
	tar := bigImageTar(b)
	bulwark := testenv.RuntimeBin(b)
	runc := lookPath(b, "runc")
	lower := filepath.Join(b.TempDir(), "lower")
	if err := os.Mkdir(lower, 0o755); err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command("tar", "-C", lower, "--numeric-owner", "--exclude=./dev/*", "-xf", tar).CombinedOutput(); err != nil {
		b.Fatalf("unpack %s: %v\n%s", tar, err, out)
	}
	size, _ := exec.Command("du", "-sm", lower).Output()
	args := []string{"/usr/bin/python3", "-c", "print('ready')"}
	cases := []runtimeCase{
		{"bulwark", bulwark, []string{"--root", runRoot(b)}, bundleFor(b, overlayRootfs(b, lower), testenv.RuncSpec(args)), bulwarkEnv(b)},
		{"runc", runc, []string{"--root", runRoot(b)}, bundleFor(b, overlayRootfs(b, lower), testenv.RuncSpec(args)), nil},
	}
	times := map[string][]float64{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range cases {
			c := cases[(i+j)%len(cases)]
			d, err := c.firstOutput(fmt.Sprintf("bench-big-%s-%d", c.name, i))
			if err != nil {
				b.Fatal(err)
			}
			times[c.name] = append(times[c.name], float64(d.Microseconds())/1000)
		}
	}
	b.StopTimer()
	bw, rc := median(times["bulwark"]), median(times["runc"])
	b.ReportMetric(bw, "bulwark-ms")
	b.ReportMetric(rc, "runc-ms")
	b.ReportMetric(bw/rc, "bulwark/runc")
	b.ReportMetric(0, "ns/op") // the per-op time mixes two runtimes; the medians are the result
	if b.N > 1 {
		fmt.Printf("time to first output of python3, %s MB Debian 12 image on overlay, %d interleaved runs each:\n"+
			"bulwark-runc median %6.1f ms\nrunc         median %6.1f ms   bulwark/runc = %.2f\n",
			strings.Fields(string(size) + " ?")[0], b.N, bw, rc, bw/rc)
	}
}
