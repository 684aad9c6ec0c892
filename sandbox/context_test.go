package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"bulwark.dev/bulwark/errdefs"
)

// TestCreateContext: a create whose context is done gives up with the context's error and
// leaves nothing (state dir, cgroup, mounts, processes), whether it was cancelled before or
// while the setup child ran; one that finished first is a normal container.
func TestCreateContext(t *testing.T) {
	needRoot(t)
	r := newTestRuntime(t)
	bundle, spec := busyboxBundle(t)
	leakCheck(t, "ctx0")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.CreateContext(ctx, "ctx0", bundle, spec, nil, IO{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("create with a cancelled context: %v", err)
	}
	if _, err := os.Stat(r.containerDir("ctx0")); !os.IsNotExist(err) {
		t.Errorf("state dir after a cancelled create: %v", err)
	}
	cancelled := 0
	for i := range 8 {
		id := fmt.Sprintf("ctx%d", i+1)
		leakCheck(t, id)
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i)*10*time.Millisecond)
		c, err := r.CreateContext(ctx, id, bundle, spec, nil, IO{})
		cancel()
		switch {
		case err == nil:
			if err := c.Delete(true); err != nil {
				t.Fatal(err)
			}
		case errors.Is(err, context.DeadlineExceeded):
			cancelled++
			if _, serr := os.Stat(r.containerDir(id)); !os.IsNotExist(serr) {
				t.Errorf("%s: state dir after a cancelled create: %v", id, serr)
			}
		default:
			t.Errorf("%s: %v", id, err)
		}
	}
	t.Logf("%d of 8 creates cancelled on the way", cancelled)
}

// TestWaitContext: WaitContext gives up when its context ends and keeps the exit status for the
// next Wait.
func TestWaitContext(t *testing.T) {
	needRoot(t)
	r := newTestRuntime(t)
	bundle, spec := busyboxBundle(t)
	leakCheck(t, "waitctx")
	c := startSleeper(t, r, "waitctx", bundle, spec)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.WaitContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait on a sleeping container: %v", err)
	}
	if err := c.Signal(syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	if code, err := c.Wait(); code != 137 || err != nil {
		t.Errorf("wait after SIGKILL: %d, %v", code, err)
	}
	// Another process's handle: no exit status, but the wait ends with the context too.
	other, err := r.Load("waitctx")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.WaitContext(context.Background()); !errors.Is(err, ErrNoExitStatus) {
		t.Errorf("wait from another handle: %v", err)
	}
	if _, err := r.Load("no/such"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("bad id: %v, want an invalid-argument error", err)
	}
	if _, err := r.Load("nosuch"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing container: %v, want a not-found error", err)
	}
}
