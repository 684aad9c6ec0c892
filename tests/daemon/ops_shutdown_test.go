package daemon

import (
	"bytes"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ended is when a command ended and how.
type ended struct {
	at  time.Time
	err error
	out string
}

// background starts the docker CLI as tn and reports its end on the returned channel.
func (e *daemonEnv) background(t *testing.T, tn tenant, args ...string) (*exec.Cmd, <-chan ended) {
	t.Helper()
	cmd := e.command(tn, "docker", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	ch := make(chan ended, 1)
	go func() {
		err := cmd.Wait()
		ch <- ended{at: time.Now(), err: err, out: out.String()}
	}()
	return cmd, ch
}

func waitEnded(t *testing.T, what string, ch <-chan ended) ended {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(3 * time.Minute):
		t.Fatalf("%s did not end", what)
	}
	return ended{}
}

// SIGTERM: no new connection; streams (a hijacked attach, logs -f) are cut at once; a request in
// flight (a docker stop waiting out its grace period) finishes and is answered; the daemon then
// exits 0; containers keep running (supervised apart from the daemon) and the next daemon lists
// them.
func TestGracefulShutdown(t *testing.T) {
	e := startDaemon(t, nil)
	e.term(t)
	editJSON(t, e.cfgPath, func(cfg map[string]any) {
		cfg["limits"] = map[string]any{"shutdown_timeout": "3m"}
	})
	e.start(t)
	a := e.alice
	e.mustDocker(t, a, "run", "-d", "--name", "keep", "busybox:1", "sh", "-c", "echo up; exec sleep 300")
	e.mustDocker(t, a, "run", "-d", "--name", "slow", "busybox:1", "sh", "-c", "trap 'echo got-term' TERM; while :; do sleep 1; done")
	if !strings.Contains(waitLogs(t, e, a, "keep", "up"), "up") {
		t.Fatal("keep never started")
	}
	pid, err := strconv.Atoi(strings.TrimSpace(e.mustDocker(t, a, "inspect", "-f", "{{.State.Pid}}", "keep")))
	if err != nil || pid <= 0 {
		t.Fatalf("keep's pid: %v", err)
	}
	_, attach := e.background(t, a, "attach", "--no-stdin", "keep")
	_, follow := e.background(t, a, "logs", "-f", "keep")
	// A stop in flight: slow ignores SIGTERM, so the stop waits out its 20 s before SIGKILL.
	_, stop := e.background(t, a, "stop", "-t", "20", "slow")
	if !strings.Contains(waitLogs(t, e, a, "slow", "got-term"), "got-term") {
		t.Fatalf("the stop never signalled slow\n%s", e.log)
	}

	if err := e.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sigterm := time.Now()
	done := make(chan error, 1)
	go func() { done <- e.cmd.Wait() }()
	at := waitEnded(t, "docker attach", attach)
	lf := waitEnded(t, "docker logs -f", follow)
	st := waitEnded(t, "docker stop", stop)
	if st.err != nil || strings.TrimSpace(st.out) != "slow" {
		t.Errorf("the stop in flight at SIGTERM: %v %q", st.err, st.out)
	}
	for name, r := range map[string]ended{"attach": at, "logs -f": lf} {
		if !r.at.Before(st.at) {
			t.Errorf("the %s stream ended %v after SIGTERM, after the stop in flight (%v): streams are cut at once",
				name, r.at.Sub(sigterm), st.at.Sub(sigterm))
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("bulwarkd exited with %v\n%s", err, e.log)
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("bulwarkd did not exit\n%s", e.log)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Errorf("keep (pid %d) did not outlive the daemon: %v", pid, err)
	}
	e.start(t)
	if out := e.mustDocker(t, a, "ps", "-a", "--format", "{{.Names}} {{.State}}"); !strings.Contains(out, "keep running") || !strings.Contains(out, "slow exited") {
		t.Errorf("ps after the restart: %q", out)
	}
}
