package perf

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

// BenchmarkBigImageRun (issue 14): `bulwark run --rm IMAGE true` of the ~460 MB Debian 12 image
// (bigTarEnv) against `docker run --rm --network none IMAGE true` of the same tarball imported into
// Docker (runc, overlay2), interleaved, medians and their ratio (target: at most 1). Both are
// measured warm: the image imported, its layer unpacked and one container run before the first
// timed one. Bulwark's default network is none, so Docker runs with --network none too. Docker
// is a private dockerd (its own data root, exec root and socket in the benchmark's temp dir, no
// bridge, no iptables rules, its cgroups under a parent of its own), stopped and its cgroups
// removed at the end; the host's Docker, if one runs, is not touched. Opt-in (bigTarEnv).
func BenchmarkBigImageRun(b *testing.B) {
	testenv.RequireRoot(b)
	tar := bigImageTar(b)
	runcBin := testenv.RuntimeBin(b)
	docker := privateDocker(b)
	if out, err := docker.cmd("import", tar, "bulwark-perf-big:1").CombinedOutput(); err != nil {
		b.Fatalf("docker import: %v\n%s", err, out)
	}
	cli, state := imageHostTar(b, runcBin, tar, "big:1")
	defer waitSupervisorGone(state)
	runs := map[string]func() (time.Duration, error){
		"bulwark": func() (time.Duration, error) { return cli("run", "--rm", "big:1", "true") },
		"docker": func() (time.Duration, error) {
			return docker.timed("run", "--rm", "--network", "none", "bulwark-perf-big:1", "true")
		},
	}
	names := []string{"bulwark", "docker"}
	for _, n := range names { // warm: the layer unpacked, caches filled
		if _, err := runs[n](); err != nil {
			b.Fatal(err)
		}
	}
	times := map[string][]float64{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range names {
			n := names[(i+j)%len(names)]
			d, err := runs[n]()
			if err != nil {
				b.Fatal(err)
			}
			times[n] = append(times[n], ms(d))
		}
	}
	b.StopTimer()
	bw, dk := median(times["bulwark"]), median(times["docker"])
	b.ReportMetric(bw, "bulwark-run-ms")
	b.ReportMetric(dk, "docker-run-ms")
	b.ReportMetric(bw/dk, "bulwark/docker")
	b.ReportMetric(0, "ns/op")
	record("big/docker", bw/dk)
	if b.N > 1 {
		fmt.Printf("run --rm IMAGE true of the 460 MB Debian 12 image, %d interleaved runs each:\n"+
			"bulwark run            median %6.1f ms\ndocker run (runc, overlay2) median %6.1f ms   bulwark/docker = %.2f\n",
			b.N, bw, dk, bw/dk)
	}
}

// dockerd is a private Docker daemon for one benchmark.
type dockerd struct {
	sock string
}

// cmd is the docker CLI talking to this daemon.
func (d *dockerd) cmd(args ...string) *exec.Cmd {
	return exec.Command("docker", append([]string{"-H", "unix://" + d.sock}, args...)...)
}

// timed runs the docker CLI with stdio on /dev/null and returns the wall time.
func (d *dockerd) timed(args ...string) (time.Duration, error) {
	cmd := d.cmd(args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	t := time.Since(start)
	if err != nil {
		return t, fmt.Errorf("docker %v: %v\n%s", args, err, stderr.String())
	}
	return t, nil
}

// privateDocker starts a dockerd of b's own (overlay2, runc) and stops it, with what it made,
// when b ends; b is skipped without dockerd and the docker CLI.
func privateDocker(b *testing.B) *dockerd {
	b.Helper()
	bin, err := exec.LookPath("dockerd")
	if err != nil {
		b.Skip("dockerd not installed (apt-get install docker.io)")
	}
	if _, err := exec.LookPath("docker"); err != nil {
		b.Skip("the docker CLI is not installed")
	}
	// Short paths: the daemon's sockets live under them.
	dir, err := os.MkdirTemp("", "bpd-")
	if err != nil {
		b.Fatal(err)
	}
	parent := "bulwark-perf-docker-" + strconv.Itoa(os.Getpid())
	d := &dockerd{sock: filepath.Join(dir, "docker.sock")}
	cmd := exec.Command(bin, "--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"-H", "unix://"+d.sock, "--pidfile", filepath.Join(dir, "docker.pid"), "--bridge=none", "--iptables=false",
		"--ip6tables=false", "--storage-driver", "overlay2", "--cgroup-parent", parent)
	log, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		b.Fatalf("dockerd: %v", err)
	}
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		log.Close()
		unmountUnder(dir)
		cgroups, _ := filepath.Glob("/sys/fs/cgroup/*/" + parent)
		for _, cg := range cgroups {
			os.Remove(cg) // empty once dockerd removed its containers
		}
		os.RemoveAll(dir)
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if d.cmd("version").Run() == nil {
			break
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(log.Name())
			b.Fatalf("dockerd did not answer within 30 s:\n%s", out)
		}
	}
	return d
}

// unmountUnder detaches every mount below dir that this (private) mount namespace still has,
// deepest first, so removing dir removes only what is on disk.
func unmountUnder(dir string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			points = append(points, f[4])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		unix.Unmount(points[i], unix.MNT_DETACH)
	}
}
