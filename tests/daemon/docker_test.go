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
	// docker run's options reach the sandbox.
	out = e.mustDocker(t, a, "run", "--rm", "-e", "FOO=bar", "-u", "65534", "-w", "/tmp", "--memory", "64m",
		"--pids-limit", "64", "--cpus", "0.5", "--read-only", "--tmpfs", "/scratch", "busybox:1",
		"sh", "-c", "echo $FOO; id -u; pwd; echo x > /scratch/f && cat /scratch/f")
	if out != "bar\n65534\n/tmp\nx\n" {
		t.Errorf("options: stdout %q", out)
	}
	// What the floor or the policy refuses is refused, with the reason, not ignored.
	for _, args := range [][]string{{"--cap-add", "SYS_ADMIN"}, {"--privileged"}, {"--network", "host"}, {"--dns", "1.1.1.1"}} {
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
	// Starting it again is not served yet: said, not silently ignored.
	if _, err := e.docker(t, a, "start", "done"); err == nil || !strings.Contains(err.Error(), "does not implement") {
		t.Errorf("start of an exited container: %v", err)
	}
	e.mustDocker(t, a, "rm", "done")
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
