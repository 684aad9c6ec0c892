// Package perf compares Bulwark's hardened sandbox with the reference runtimes on this host, each
// figure a median measured side by side in one run (runtimes interleaved) and reported as a ratio:
// start-to-exit of /bin/true against Debian's runc and crun on the same bundle, with bulwark-runc's
// per-step breakdown (steps_test.go); `bulwark run --rm IMAGE true` against bulwark-runc on the
// image's rootfs (image_test.go); exec into a running container (exec_test.go); host memory per
// idle container (memory_test.go); time to first output from a 536 MB Debian image on an
// overlay rootfs against runc (bigimage_test.go) and `bulwark run` of that image against Docker
// with runc on overlay2 (docker_test.go: a private dockerd), both opt-in: BULWARK_PERF_BIG_TAR; and
// the per-syscall cost of Bulwark's seccomp floor against Docker's default profile on runc. The
// last thing printed is the table of issue 14's targets, each ratio measured and met or not
// (targets_test.go). `make perf` runs it; it needs root, runc and crun.
//
// crun 1.8 refuses this hybrid-cgroup host because the v2 mount lists a controller (hugetlb), so the
// whole benchmark re-executes itself in a private mount namespace where
// /sys/fs/cgroup/unified/cgroup.controllers is covered by an empty file, and every runtime runs
// there the same way.
package perf

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/profiles"
	"bulwark.dev/bulwark/tests/internal/testenv"
)

// nsEnv marks the re-executed benchmark process that already runs in the private mount namespace.
const nsEnv = "BULWARK_BENCH_PRIVATE_NS"

func TestMain(m *testing.M) {
	flag.Parse()
	// Only benchmarks need the private namespace; `go test ./tests/...` runs none here.
	benchmarking := flag.Lookup("test.bench").Value.String() != ""
	if benchmarking && os.Geteuid() == 0 && os.Getenv(nsEnv) == "" {
		os.Exit(testenv.ReexecPrivateMountNS(nsEnv))
	}
	if os.Getenv(nsEnv) != "" {
		if err := coverControllers(); err != nil {
			fmt.Fprintln(os.Stderr, "perf:", err)
			os.Exit(1)
		}
	}
	code := testenv.Main(m)
	if benchmarking {
		printTargets()
	}
	os.Exit(code)
}

// coverControllers bind-mounts an empty file over the v2 controller list, in this private mount
// namespace only, so crun sees a plain v1 host.
func coverControllers() error {
	const target = "/sys/fs/cgroup/unified/cgroup.controllers"
	if _, err := os.Stat(target); err != nil {
		return nil // not a hybrid host: nothing to hide
	}
	dir, err := os.MkdirTemp("", "bulwark-perf-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir) // the bind keeps the empty file's inode; nothing else needs the directory
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o444); err != nil {
		return err
	}
	if err := unix.Mount(empty, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("cover %s: %w", target, err)
	}
	return nil
}

// runtimeCase is one runtime binary with the flags and bundle it is measured with.
type runtimeCase struct {
	name   string
	bin    string
	args   []string // global flags before the subcommand
	bundle string
	env    []string // extra environment
}

// runRoot is a runtime's --root for one case: a fresh directory on tmpfs, as every runtime's
// default is (/run/runc, /run/crun, /run/bulwark-runc). On the disk under b.TempDir() each state
// write of a runtime that replaces its state file (rename) made ext4 flush it, a cost no default
// set-up pays. Bulwark's persistent state (bulwarkEnv) stays on disk.
func runRoot(b *testing.B) string {
	d, err := os.MkdirTemp("/dev/shm", "bulwark-perf-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// bulwarkEnv keeps bulwark-runc's persistent state (policy revision, audit log) in a temp dir.
func bulwarkEnv(b *testing.B) []string { return []string{"BULWARK_STATE_ROOT=" + b.TempDir()} }

// run does `<runtime> run --bundle B id` with stdio on /dev/null and returns the wall time.
func (r runtimeCase) run(id string) (time.Duration, error) {
	args := append(slices.Clone(r.args), "run", "--bundle", r.bundle, id)
	cmd := exec.Command(r.bin, args...)
	cmd.Env = append(os.Environ(), r.env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		return d, fmt.Errorf("%s %v: %v\n%s", r.bin, args, err, out)
	}
	return d, nil
}

// output is like run but returns the container's stdout.
func (r runtimeCase) output(id string) (string, error) {
	args := append(slices.Clone(r.args), "run", "--bundle", r.bundle, id)
	cmd := exec.Command(r.bin, args...)
	cmd.Env = append(os.Environ(), r.env...)
	var stderr []byte
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = ee.Stderr
	}
	if err != nil {
		return "", fmt.Errorf("%s %v: %v\n%s", r.bin, args, err, stderr)
	}
	return string(out), nil
}

func lookPath(b *testing.B, name string) string {
	b.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		b.Skipf("%s not installed (apt-get install runc crun): %v", name, err)
	}
	return p
}

// bundleFor writes a bundle sharing rootfs (by absolute path) with the given spec.
func bundleFor(b *testing.B, rootfs string, spec *specs.Spec) string {
	b.Helper()
	dir := b.TempDir()
	if err := os.Chmod(dir, 0o711); err != nil {
		b.Fatal(err)
	}
	spec.Root = &specs.Root{Path: rootfs, Readonly: true}
	// crun 1.8 refuses ociVersion values it does not know ("unknown version specified").
	spec.Version = "1.0.2"
	testenv.WriteConfig(b, dir, spec)
	return dir
}

// hardened turns a runc-style spec into the usual "hardened" configuration of the reference
// runtimes: a user namespace (container root = an unprivileged host id), no capabilities, Docker's
// default seccomp profile. Mounts a user namespace cannot make (a v1 cgroupfs) are dropped.
func hardened(b *testing.B, s *specs.Spec) *specs.Spec {
	b.Helper()
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 3_000_000_000, Size: 65536}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 3_000_000_000, Size: 65536}}
	s.Process.Capabilities = &specs.LinuxCapabilities{}
	s.Linux.Seccomp = dockerDefault(b)
	s.Mounts = slices.DeleteFunc(s.Mounts, func(m specs.Mount) bool { return m.Type == "cgroup" })
	return s
}

// dockerDefault is Docker's default seccomp profile (github.com/moby/profiles/seccomp v0.1.0 from the
// Go module proxy), resolved for a container without capabilities.
func dockerDefault(b *testing.B) *specs.LinuxSeccomp {
	b.Helper()
	scratch := b.TempDir()
	cmd := exec.Command("sh", "-c", "go mod init scratch >/dev/null 2>&1 && go mod download -json github.com/moby/profiles/seccomp@v0.1.0")
	cmd.Dir = scratch
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		b.Skipf("Docker's seccomp profile unavailable (go mod download github.com/moby/profiles/seccomp): %v", err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil {
		b.Fatalf("go mod download output: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(mod.Dir, "default.json"))
	if err != nil {
		b.Fatal(err)
	}
	p, err := profiles.ParseDockerSeccomp(data)
	if err != nil {
		b.Fatalf("parse Docker's default profile: %v", err)
	}
	return p
}

// median of ds (ds is sorted in place).
func median(ds []float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	sort.Float64s(ds)
	if n := len(ds); n%2 == 0 {
		return (ds[n/2-1] + ds[n/2]) / 2
	}
	return ds[len(ds)/2]
}
