package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"

	"bulwark.dev/bulwark/engine"
)

// CreateRequest maps a bulwark run request (its op.RunFlags) onto Docker's create request, which bulwarkd maps
// back onto the engine's (the tenant is the connection's, never the request's). An environment
// entry NAME alone takes the caller's value, as the docker CLI does (left out when unset): the
// daemon's environment is not the caller's.
func CreateRequest(req *engine.Request) *container.CreateRequest {
	cfg := &container.Config{
		Image: req.Image, Cmd: req.Args, Entrypoint: req.Entrypoint, Env: environ(req.Env),
		WorkingDir: req.Workdir, User: req.User, Hostname: req.Hostname,
		AttachStdout: !req.Detach, AttachStderr: !req.Detach,
	}
	hc := &container.HostConfig{
		AutoRemove: req.Remove, CapAdd: req.CapAdd, CapDrop: req.CapDrop,
		// Every sandbox's root is read-only; saying so spares the daemon's warning.
		ReadonlyRootfs: true,
	}
	hc.Memory, hc.NanoCPUs = req.Memory, int64(req.CPUs*1e9)
	if req.PidsLimit > 0 {
		n := req.PidsLimit
		hc.PidsLimit = &n
	}
	if len(req.Tmpfs) > 0 {
		hc.Tmpfs = map[string]string{}
		for _, t := range req.Tmpfs {
			dst, opts, _ := strings.Cut(t, ":")
			hc.Tmpfs[dst] = opts
		}
	}
	return &container.CreateRequest{Config: cfg, HostConfig: hc}
}

// environ resolves NAME entries from the caller's environment.
func environ(env []string) []string {
	var out []string
	for _, e := range env {
		if strings.Contains(e, "=") {
			out = append(out, e)
		} else if v, ok := os.LookupEnv(e); ok {
			out = append(out, e+"="+v)
		}
	}
	return out
}

// Run runs req through the daemon as bulwark run does locally: created (the daemon decides at
// once, and again at start), then either detached (its id printed) or in the foreground: its
// output copied to out and errOut until it exits, signals from sigs forwarded to it, and its
// exit status returned. A refusal is the error, with status 125.
func (c *Client) Run(ctx context.Context, req *engine.Request, out, errOut io.Writer, sigs <-chan os.Signal) (int, error) {
	created, err := c.Create(ctx, req.Name, CreateRequest(req))
	if err != nil {
		return 125, err
	}
	for _, w := range created.Warnings {
		fmt.Fprintln(errOut, "WARNING:", w)
	}
	id := created.ID
	if req.Detach {
		if err := c.Start(ctx, id); err != nil {
			return 125, err
		}
		fmt.Fprintln(out, id)
		return 0, nil
	}
	// As the docker CLI: the output stream and the wait are in place before the start, so
	// neither the first line nor the exit is missed.
	st, err := c.attach(ctx, id)
	if err != nil {
		return 125, err
	}
	defer st.Close()
	cond := container.WaitConditionNextExit
	if req.Remove {
		cond = container.WaitConditionRemoved
	}
	w, err := c.Wait(ctx, id, cond)
	if err != nil {
		return 125, err
	}
	if err := c.Start(ctx, id); err != nil {
		// The daemon ends a container it could not start with the status for it (125, or
		// 126/127 for a command that cannot be run) and answers the wait.
		code, _ := resultWithin(w, time.Minute)
		if code <= 0 {
			code = 125
		}
		return code, err
	}
	go c.forward(ctx, id, sigs)
	if st.raw {
		_, err = io.Copy(out, st)
	} else {
		_, err = stdcopy.StdCopy(out, errOut, st)
	}
	if err != nil {
		return 125, fmt.Errorf("output of %s: %w", id, err)
	}
	return w.result()
}

// resultWithin is the wait's answer, or -1 when none comes within d.
func resultWithin(w *waiter, d time.Duration) (int, error) {
	t := time.AfterFunc(d, func() { w.body.Close() })
	defer t.Stop()
	return w.result()
}

// forward sends the signals the CLI receives to the container, as docker run's sig-proxy and
// as the local run: the third interrupt kills it (a PID 1 without a handler ignores SIGINT and
// SIGTERM).
func (c *Client) forward(ctx context.Context, id string, sigs <-chan os.Signal) {
	interrupts := 0
	for s := range sigs {
		sig, ok := s.(syscall.Signal)
		if !ok {
			continue
		}
		if sig == syscall.SIGINT || sig == syscall.SIGTERM {
			if interrupts++; interrupts >= 3 {
				sig = syscall.SIGKILL
			}
		}
		c.Kill(ctx, id, strconv.Itoa(int(sig)))
	}
}

// Exec runs a process in a running container through the daemon (which decides it as the
// engine decides a local exec): its output copied to out and errOut, stdin (when not nil) sent
// to it, its exit status returned.
func (c *Client) Exec(ctx context.Context, id string, req engine.ExecRequest, stdin io.Reader, out, errOut io.Writer) (int, error) {
	create := container.ExecCreateRequest{Cmd: req.Args, Env: environ(req.Env), WorkingDir: req.Workdir, User: req.User,
		AttachStdin: stdin != nil, AttachStdout: true, AttachStderr: true}
	var created container.ExecCreateResponse
	if err := c.call(ctx, http.MethodPost, "/containers/"+url.PathEscape(id)+"/exec", nil, create, &created); err != nil {
		return 125, err
	}
	st, err := c.hijack(ctx, "/exec/"+url.PathEscape(created.ID)+"/start", nil, container.ExecStartRequest{})
	if err != nil {
		return 125, err
	}
	defer st.Close()
	if stdin != nil {
		go func() {
			io.Copy(st.conn, stdin)
			st.closeWrite()
		}()
	}
	if _, err := stdcopy.StdCopy(out, errOut, st); err != nil {
		return 125, fmt.Errorf("exec output: %w", err)
	}
	// The daemon records the status before it ends the stream.
	var ins container.ExecInspectResponse
	if err := c.call(ctx, http.MethodGet, "/exec/"+url.PathEscape(created.ID)+"/json", nil, nil, &ins); err != nil {
		return 125, err
	}
	if ins.Running || ins.ExitCode == nil {
		return 125, fmt.Errorf("exec %s: the stream ended before the process", created.ID)
	}
	return *ins.ExitCode, nil
}
