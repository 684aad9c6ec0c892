package daemon

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// docker exec, stats --no-stream, top and events against a running container of the caller's.
func TestExecStatsTopEvents(t *testing.T) {
	e := startDaemon(t, nil)
	a, b := e.alice, e.bob
	// Events are watched from before anything happens, by alice and by bob.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var aliceEvents, bobEvents syncBuffer
	for _, w := range []struct {
		tn  tenant
		out *syncBuffer
	}{{a, &aliceEvents}, {b, &bobEvents}} {
		cmd := e.command(w.tn, "docker", "events", "--format", "{{.Action}} {{.Actor.Attributes.name}}")
		cmd.Stdout = w.out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { <-ctx.Done(); cmd.Process.Kill() }()
		defer cmd.Wait()
	}
	// Each watcher is subscribed once it has seen an event of its own tenant's.
	for _, w := range []struct {
		tn  tenant
		out *syncBuffer
	}{{a, &aliceEvents}, {b, &bobEvents}} {
		for i := 0; !strings.Contains(w.out.String(), "create sync-"); i++ {
			if i == 100 {
				t.Fatalf("uid %d's docker events saw nothing", w.tn.uid)
			}
			name := "sync-" + randHex(4)
			e.mustDocker(t, w.tn, "create", "--name", name, "busybox:1", "true")
			e.mustDocker(t, w.tn, "rm", name)
			time.Sleep(50 * time.Millisecond)
		}
	}

	e.mustDocker(t, a, "run", "-d", "--name", "box", "busybox:1", "sleep", "300")
	if out := e.mustDocker(t, a, "exec", "box", "sh", "-c", "echo in-exec; echo to-err >&2"); out != "in-exec\n" {
		t.Errorf("exec stdout: %q", out)
	}
	_, err := e.docker(t, a, "exec", "box", "sh", "-c", "exit 4")
	var ce *cliError
	if !errors.As(err, &ce) || ce.code() != 4 {
		t.Errorf("exec exit 4: %v", err)
	}
	cmd := e.command(a, "docker", "exec", "-i", "box", "cat")
	cmd.Stdin = strings.NewReader("through stdin\n")
	if out, err := cmd.Output(); err != nil || string(out) != "through stdin\n" {
		t.Errorf("exec -i: %q %v", out, err)
	}
	if out := e.mustDocker(t, a, "exec", "-u", "65534", "-w", "/tmp", "-e", "X=y", "box", "sh", "-c", "id -u; pwd; echo $X"); out != "65534\n/tmp\ny\n" {
		t.Errorf("exec -u -w -e: %q", out)
	}
	if _, err := e.docker(t, a, "exec", "box", "no-such-command"); !errors.As(err, &ce) || ce.code() != 127 {
		t.Errorf("exec of a missing command: %v", err)
	}
	if out := e.mustDocker(t, a, "stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "box"); out != "box 1\n" {
		t.Errorf("stats: %q", out)
	}
	if out := e.mustDocker(t, a, "top", "box"); !strings.Contains(out, "sleep 300") {
		t.Errorf("top: %q", out)
	}
	// Bob reaches none of it.
	for _, args := range [][]string{{"exec", "box", "true"}, {"stats", "--no-stream", "box"}, {"top", "box"}} {
		if _, err := e.docker(t, b, args...); err == nil {
			t.Errorf("bob: docker %v succeeded on alice's box", args)
		}
	}
	id := strings.TrimSpace(e.mustDocker(t, a, "inspect", "-f", "{{.Id}}", "box"))
	for _, args := range [][]string{{"exec", id, "true"}, {"top", id}} {
		if _, err := e.docker(t, b, args...); err == nil || !strings.Contains(err.Error(), "No such container") {
			t.Errorf("bob: docker %v by id: %v", args, err)
		}
	}
	e.mustDocker(t, a, "rm", "-f", "box")
	want := "create box\nstart box\n"
	for i := 0; i < 100 && !strings.Contains(aliceEvents.String(), "destroy box"); i++ {
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	if !strings.Contains(aliceEvents.String(), want) || !strings.Contains(aliceEvents.String(), "destroy box") {
		t.Errorf("alice's events: %q", aliceEvents.String())
	}
	if strings.Contains(bobEvents.String(), "box") {
		t.Errorf("bob saw alice's events: %q", bobEvents.String())
	}
}

// syncBuffer is a bytes.Buffer a command writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
