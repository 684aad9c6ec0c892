package daemon

import (
	"errors"
	"strings"
	"testing"
)

// The stock docker CLI against bulwarkd: version negotiation, a foreground run's output and exit
// status, a detached container listed, logged and removed.
func TestDockerCLI(t *testing.T) {
	e := startDaemon(t, nil)
	a := e.alice

	out := e.mustDocker(t, a, "version", "--format", "{{.Server.Platform.Name}} {{.Server.APIVersion}} {{.Server.MinAPIVersion}}")
	if strings.TrimSpace(out) != "Bulwark 1.50 1.41" {
		t.Errorf("docker version: %q", out)
	}

	if out := e.mustDocker(t, a, "run", "--rm", "busybox:1", "echo", "hi"); out != "hi\n" {
		t.Errorf("docker run --rm busybox:1 echo hi: stdout %q", out)
	}
	_, err := e.docker(t, a, "run", "--rm", "busybox:1", "sh", "-c", "echo out; echo err >&2; exit 3")
	var ce *cliError
	if !errors.As(err, &ce) || ce.code() != 3 || !strings.Contains(ce.stderr, "err\n") {
		t.Errorf("exit 3: got %v", err)
	}
	// With a terminal: raw output (no multiplexing), the workload's exit status.
	_, err = e.docker(t, a, "run", "--rm", "-t", "busybox:1", "sh", "-c", "echo tty; exit 2")
	if !errors.As(err, &ce) || ce.code() != 2 {
		t.Errorf("run -t: %v", err)
	}
	if out := e.mustDocker(t, a, "run", "--rm", "-t", "busybox:1", "echo", "tty"); out != "tty\r\n" {
		t.Errorf("run -t stdout: %q", out)
	}
	// docker run's options take effect, each seen from inside the container: environment, user,
	// working directory, the cgroup limits, the capabilities (all dropped but NET_BIND_SERVICE, bit
	// 10), the read-only root and a writable tmpfs.
	out = e.mustDocker(t, a, "run", "--rm", "-e", "FOO=bar", "-u", "65534", "-w", "/tmp", "--memory", "64m",
		"--pids-limit", "64", "--cpus", "0.5", "--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE", "--read-only", "--tmpfs", "/scratch", "busybox:1",
		"sh", "-c", "echo $FOO; id -u; pwd; cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max "+
			"/sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us; grep CapBnd /proc/self/status; "+
			"touch /x 2>/dev/null || echo root-ro; echo x > /scratch/f && cat /scratch/f")
	if out != "bar\n65534\n/tmp\n67108864\n64\n50000\n100000\nCapBnd:\t0000000000000400\nroot-ro\nx\n" {
		t.Errorf("options: stdout %q", out)
	}
	// What the floor or the policy refuses is refused, with the reason, not ignored.
	// A capability the floor drops is refused when asked for by name (it was accepted and
	// dropped: the workload ran without it).
	for _, args := range [][]string{{"--cap-add", "SYS_ADMIN"}, {"--cap-add", "SYS_CHROOT"}, {"--cap-add", "NET_RAW"}, {"--privileged"}, {"--network", "host"}, {"--dns", "1.1.1.1"}} {
		_, err := e.docker(t, a, append(append([]string{"run", "--rm"}, args...), "busybox:1", "true")...)
		if !errors.As(err, &ce) || ce.code() != 125 {
			t.Errorf("run %v: want refused (125), got %v", args, err)
		}
	}

	id := strings.TrimSpace(e.mustDocker(t, a, "run", "-d", "--name", "web", "busybox:1", "sh", "-c", "echo started; exec sleep 300"))
	if len(id) != 64 {
		t.Fatalf("run -d printed %q", id)
	}
	if out := e.mustDocker(t, a, "ps", "--format", "{{.Names}} {{.State}}"); out != "web running\n" {
		t.Errorf("ps: %q", out)
	}
	if out := waitLogs(t, e, a, "web", "started\n"); out != "started\n" {
		t.Errorf("logs: %q", out)
	}
	if out := e.mustDocker(t, a, "inspect", "-f", "{{.State.Status}} {{.Name}}", id[:12]); out != "running /web\n" {
		t.Errorf("inspect: %q", out)
	}
	e.mustDocker(t, a, "rm", "-f", "web")
	if out := e.mustDocker(t, a, "ps", "-aq"); out != "" {
		t.Errorf("ps -a after rm -f: %q", out)
	}
	// A stopped container keeps its exit status until removed.
	e.mustDocker(t, a, "run", "--name", "done", "busybox:1", "true")
	if out := e.mustDocker(t, a, "ps", "-a", "--format", "{{.Names}} {{.State}}"); out != "done exited\n" {
		t.Errorf("ps -a: %q", out)
	}
	if out := e.mustDocker(t, a, "wait", "done"); out != "0\n" {
		t.Errorf("wait: %q", out)
	}
	e.mustDocker(t, a, "rm", "done")
	// start of an exited container and restart run it again from its record.
	e.docker(t, a, "run", "--name", "again", "busybox:1", "sh", "-c", "echo ran; exit 3")
	if out, err := e.docker(t, a, "start", "-a", "again"); out != "ran\n" || !errors.As(err, &ce) || ce.code() != 3 {
		t.Errorf("start -a of an exited container: %q %v", out, err)
	}
	if out := e.mustDocker(t, a, "wait", "again"); out != "3\n" {
		t.Errorf("wait after start: %q", out)
	}
	if out := e.mustDocker(t, a, "logs", "again"); out != "ran\nran\n" {
		t.Errorf("logs after start: %q", out)
	}
	e.mustDocker(t, a, "rm", "again")
	for _, rm := range []bool{false, true} {
		args := []string{"run", "-d", "--name", "up", "busybox:1", "sh", "-c", "echo up; exec sleep 300"}
		if rm {
			args = append([]string{args[0], "--rm"}, args[1:]...)
		}
		e.mustDocker(t, a, args...)
		waitLogs(t, e, a, "up", "up\n")
		pid := e.mustDocker(t, a, "inspect", "-f", "{{.State.Pid}}", "up")
		if out := e.mustDocker(t, a, "restart", "-t", "1", "up"); out != "up\n" {
			t.Errorf("restart (--rm %v): %q", rm, out)
		}
		if out := e.mustDocker(t, a, "inspect", "-f", "{{.State.Status}} {{.State.Pid}}", "up"); !strings.HasPrefix(out, "running ") || strings.HasSuffix(out, " "+pid) {
			t.Errorf("after restart (--rm %v): %q (pid before %s)", rm, out, pid)
		}
		if out := waitLogs(t, e, a, "up", "up\nup\n"); out != "up\nup\n" {
			t.Errorf("logs after restart (--rm %v): %q", rm, out)
		}
		e.mustDocker(t, a, "rm", "-f", "up")
	}
	if out := e.mustDocker(t, a, "images", "--format", "{{.Repository}}:{{.Tag}}"); out != "busybox:1\n" {
		t.Errorf("images: %q", out)
	}
	if out := e.mustDocker(t, a, "image", "inspect", "-f", "{{.Os}}", "busybox:1"); out != "linux\n" {
		t.Errorf("image inspect: %q", out)
	}
}

// waitLogs reads a container's logs until they hold want (the container writes them after it
// starts).
func waitLogs(t *testing.T, e *daemonEnv, tn tenant, name, want string) string {
	t.Helper()
	var out string
	for i := 0; i < 600; i++ {
		out = e.mustDocker(t, tn, "logs", name)
		if strings.Contains(out, want) {
			return out
		}
	}
	return out
}
