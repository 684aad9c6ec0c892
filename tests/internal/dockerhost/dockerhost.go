// Package dockerhost runs a real dockerd (Debian's docker.io) for end-to-end tests and
// benchmarks, in a private mount and network namespace (docs/runtime.md): its bridge, veths, NAT
// rules and docker-proxy live in that namespace and vanish with it, its data, exec root and
// socket are in a temp dir, a tmpfs covers /etc/docker (its trust key), and its containers'
// cgroups go below a parent of their own, removed at the end.
package dockerhost

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Runtime is one OCI runtime registered with dockerd (daemon.json's runtimes).
type Runtime struct {
	Path string `json:"path"`
	// Args are passed before the subcommand; DataRootArg in one stands for the daemon's data
	// root (not known before Start).
	Args []string `json:"runtimeArgs,omitempty"`
}

// DataRootArg in a runtime's Args is replaced by the daemon's data root.
const DataRootArg = "{data-root}"

// Options configure the daemon.
type Options struct {
	Runtimes map[string]Runtime
	// UserlandProxy keeps Docker's default docker-proxy for published ports; false makes
	// loopback traffic to them go through NAT (hairpin), as CNI's portmap does.
	UserlandProxy bool
	// StorageDriver is dockerd's storage driver; empty is its default, overlay2 (the data root is
	// in the test's temp dir, which must be on a filesystem overlay2 supports: ext4 or xfs with
	// d_type; Start skips the test otherwise).
	StorageDriver string
}

// Host is a running dockerd.
type Host struct {
	Dir          string
	cli          string
	cgroupParent string
	daemon       *exec.Cmd
	// PID is dockerd's, inside its namespaces (nsenter -t PID -n reaches its network).
	PID int
}

// Dockerd returns the real path of the dockerd binary, skipping tb when there is none.
func Dockerd(tb testing.TB) string {
	tb.Helper()
	p, err := exec.LookPath("dockerd")
	if err != nil {
		tb.Skip("dockerd missing (apt-get install docker.io)")
	}
	if p, err = filepath.EvalSymlinks(p); err != nil {
		tb.Fatal(err)
	}
	return p
}

// Start starts dockerd and waits until it answers; it is stopped (its containers removed) when
// tb ends. tb is skipped when docker.io is not installed.
func Start(tb testing.TB, o Options) *Host {
	tb.Helper()
	Dockerd(tb)
	cli := "/usr/bin/docker" // docker.io's client speaks its daemon's API version
	if _, err := os.Stat(cli); err != nil {
		tb.Skip("docker.io's client /usr/bin/docker missing")
	}
	if fi, err := os.Stat("/etc/docker"); err != nil || !fi.IsDir() {
		tb.Skip("/etc/docker missing (dockerd's trust key goes there; a tmpfs covers it here)")
	}
	var b [4]byte
	rand.Read(b[:])
	h := &Host{Dir: tb.TempDir(), cli: cli, cgroupParent: "bwtest-docker-" + hex.EncodeToString(b[:])}
	runtimes := map[string]Runtime{}
	for name, r := range o.Runtimes {
		args := make([]string, len(r.Args))
		for i, a := range r.Args {
			args[i] = strings.ReplaceAll(a, DataRootArg, h.DataRoot())
		}
		runtimes[name] = Runtime{Path: r.Path, Args: args}
	}
	conf := map[string]any{
		"runtimes": runtimes, "exec-opts": []string{"native.cgroupdriver=cgroupfs"},
		"cgroup-parent": h.cgroupParent, "userland-proxy": o.UserlandProxy,
		"data-root": h.DataRoot(), "exec-root": filepath.Join(h.Dir, "exec"),
		"pidfile": filepath.Join(h.Dir, "docker.pid"), "hosts": []string{"unix://" + h.sock()},
	}
	if o.StorageDriver != "" {
		conf["storage-driver"] = o.StorageDriver
	} else {
		requireOverlayFS(tb, h.Dir)
	}
	confJSON, err := json.Marshal(conf)
	if err != nil {
		tb.Fatal(err)
	}
	confFile := filepath.Join(h.Dir, "daemon.json")
	if err := os.WriteFile(confFile, confJSON, 0o644); err != nil {
		tb.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(h.Dir, "dockerd.log"))
	if err != nil {
		tb.Fatal(err)
	}
	defer logf.Close()
	h.daemon = exec.Command("unshare", "--mount", "--net", "--propagation", "private", "--fork", "--kill-child=SIGTERM",
		"sh", "-c", "mount -t tmpfs tmpfs /etc/docker && ip link set lo up && exec dockerd --config-file "+confFile)
	h.daemon.Stdout, h.daemon.Stderr = logf, logf
	if err := h.daemon.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.stop(tb) })
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := h.Docker("version"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("dockerd did not start:\n%s", h.Log())
		}
		time.Sleep(200 * time.Millisecond)
	}
	pid, err := os.ReadFile(filepath.Join(h.Dir, "docker.pid"))
	if err != nil {
		tb.Fatal(err)
	}
	fmt.Sscan(string(pid), &h.PID)
	return h
}

func (h *Host) sock() string { return filepath.Join(h.Dir, "docker.sock") }

// CgroupParent is the cgroup (in every hierarchy) the containers' cgroups are made below.
func (h *Host) CgroupParent() string { return h.cgroupParent }

// DataRoot is dockerd's data root (images, containers, volumes/).
func (h *Host) DataRoot() string { return filepath.Join(h.Dir, "data") }

// requireOverlayFS skips tb unless dir is on a filesystem overlay2 takes as its backing
// filesystem (ext4 and xfs here; dockerd also checks d_type itself and says so in its log).
func requireOverlayFS(tb testing.TB, dir string) {
	tb.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		tb.Fatal(err)
	}
	const ext4, xfs = 0xef53, 0x58465342
	if st.Type != ext4 && st.Type != xfs {
		tb.Skipf("%s is on filesystem type %#x, which dockerd's overlay2 does not take as its data root's (ext4 or xfs)", dir, st.Type)
	}
}

// Log is dockerd's output so far.
func (h *Host) Log() string {
	b, _ := os.ReadFile(filepath.Join(h.Dir, "dockerd.log"))
	return string(b)
}

// Docker runs the client against this daemon and returns its combined output.
func (h *Host) Docker(args ...string) (string, error) {
	out, err := exec.Command(h.cli, append([]string{"-H", "unix://" + h.sock()}, args...)...).CombinedOutput()
	return string(out), err
}

// Must runs a client command that must succeed and returns its trimmed output.
func (h *Host) Must(tb testing.TB, args ...string) string {
	tb.Helper()
	out, err := h.Docker(args...)
	if err != nil {
		tb.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(out)
}

// InNetns is a command in the daemon's network namespace (the test's "host").
func (h *Host) InNetns(args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"-t", fmt.Sprint(h.PID), "-n"}, args...)...)
}

// stop removes every container, stops dockerd and its namespaces, and removes the cgroup parent
// the containers' cgroups were made below.
func (h *Host) stop(tb testing.TB) {
	if out, err := h.Docker("ps", "-aq"); err == nil && strings.TrimSpace(out) != "" {
		if out, err := h.Docker(append([]string{"rm", "-f"}, strings.Fields(out)...)...); err != nil {
			tb.Errorf("docker rm -f: %v\n%s", err, out)
		}
	}
	// dockerd itself: unshare would pass the signal on only as it dies.
	if h.PID > 0 {
		_ = syscall.Kill(h.PID, syscall.SIGTERM)
	} else {
		_ = h.daemon.Process.Signal(syscall.SIGTERM)
	}
	done := make(chan error, 1)
	go func() { done <- h.daemon.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = h.daemon.Process.Kill()
		<-done
		tb.Errorf("dockerd did not stop in 60 s:\n%s", h.Log())
	}
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + h.cgroupParent)
	for _, d := range dirs {
		if err := os.Remove(d); err != nil {
			tb.Errorf("cgroup parent left: %v", err)
		}
	}
}

// FileDigest is the hex sha256 of a file's content (a hook allowlist entry's digest).
func FileDigest(tb testing.TB, path string) string {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	s := sha256.New()
	if _, err := io.Copy(s, f); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(s.Sum(nil))
}

// HookPolicy writes bulwark-runc policy data with the shipped defaults and tenants (a JSON
// object of tenant entries); "$DOCKERD" in tenants stands for an allowlist entry of dockerd's
// own binary (path and digest) run as libnetwork-setkey, the prestart hook that plugs every Docker
// container into its network.
func HookPolicy(tb testing.TB, tenants string) string {
	tb.Helper()
	if strings.Contains(tenants, "$DOCKERD") {
		d := Dockerd(tb)
		tenants = strings.ReplaceAll(tenants, "$DOCKERD", fmt.Sprintf(`{"path": %q, "sha256": %q, "args": ["libnetwork-setkey"]}`, d, FileDigest(tb, d)))
	}
	data := `{"bulwark": {"defaults": {"grantable_capabilities": ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "SETUID", "SETGID", "KILL", "NET_BIND_SERVICE"],
  "max_memory": 8589934592, "max_pids": 4096, "bind_sources": [], "writable_bind_sources": []}, "tenants": ` + tenants + `}}`
	dir := tb.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "data.json"), []byte(data), 0o644); err != nil {
		tb.Fatal(err)
	}
	return dir
}
