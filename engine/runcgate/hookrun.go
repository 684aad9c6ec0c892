package runcgate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/engine/internal/gate"
	"bulwark.dev/bulwark/internal/headbuf"
)

// hookOutputLimit is how much of a failed hook's output its error quotes.
const hookOutputLimit = 4096

// RunHooks runs the hooks of phase, in order, each with the container's state (JSON) on its
// stdin, as the caller and bounded by its timeout (DefaultHookTimeout seconds if the spec sets
// none), and records every run in the audit log of cfg.StateRoot (a container.hook event:
// phase, path, resolved path, digest, args, result, duration), durable before it returns. A
// hook read back from a record (poststart, poststop) runs only if its file is still the one
// decided on. For prestart and createRuntime the first failure stops the phase and is returned
// (the caller deletes the container); for poststart and poststop every hook runs and the
// failures are returned joined (the caller logs them: the lifecycle goes on).
func RunHooks(ctx context.Context, cfg Config, tenant string, phase string, hs Hooks, state specs.State) error {
	hs = hs.Phase(phase)
	if len(hs) == 0 {
		return nil
	}
	stdin, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("%s hooks: encode state: %w", phase, err)
	}
	log, err := audit.Open(filepath.Join(cfg.StateRoot, "audit"), audit.Options{})
	if err != nil {
		return fmt.Errorf("%s hooks: open audit log: %w", phase, err)
	}
	uid := cfg.UID
	t := gate.NewTrail(log, audit.Actor{UID: &uid}, tenant, newRequestID())
	t.SetContainer(state.ID)
	stopAtFirst := phase == PhasePrestart || phase == PhaseCreateRuntime
	var errs []error
	for _, h := range hs {
		start := time.Now()
		herr := h.run(ctx, stdin)
		attrs := map[string]string{
			"runtime": "bulwark-runc", "phase": h.Phase, "path": h.Path, "resolved": h.Resolved,
			"sha256": h.SHA256, "args": gate.JSONString(h.Args), "result": "ok",
			"duration_ns": strconv.FormatInt(time.Since(start).Nanoseconds(), 10),
		}
		if herr != nil {
			attrs["result"], attrs["error"] = "failed", herr.Error()
			errs = append(errs, herr)
		}
		t.Add(audit.TypeContainer, "hook", attrs)
		if herr != nil && stopAtFirst {
			break
		}
	}
	if ferr := errors.Join(t.Flush(), log.Close()); ferr != nil {
		errs = append(errs, fmt.Errorf("%s hooks were not audited: %w", phase, ferr))
	}
	return errors.Join(errs...)
}

// run executes the hook's opened file (the descriptor that was hashed, as fd 3 of the hook
// process, so that a file renamed over the path since cannot run instead).
func (h *Hook) run(ctx context.Context, stdin []byte) error {
	defer func() {
		if h.file != nil {
			h.file.Close()
			h.file = nil
		}
	}()
	if h.file == nil {
		if err := h.reopen(); err != nil {
			return err
		}
	}
	timeout := DefaultHookTimeout
	if h.Timeout != nil {
		timeout = *h.Timeout
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(timeout)*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/proc/self/fd/3")
	cmd.Args = h.Args
	if len(cmd.Args) == 0 {
		cmd.Args = []string{h.Path}
	}
	// Exactly the spec's environment, not the runtime's.
	cmd.Env = append([]string{}, h.Env...)
	cmd.ExtraFiles = []*os.File{h.file}
	cmd.Stdin = bytes.NewReader(stdin)
	out := &headbuf.Buffer{Max: hookOutputLimit}
	cmd.Stdout, cmd.Stderr = out, out
	// A hook's own children go with it on a timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		return fmt.Errorf("%s hook %s timed out after %d s (killed)%s", h.Phase, h.Path, timeout, out.Quoted())
	case err != nil:
		return fmt.Errorf("%s hook %s: %w%s", h.Phase, h.Path, err, out.Quoted())
	}
	return nil
}
