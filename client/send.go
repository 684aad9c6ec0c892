package client

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"bulwark.dev/bulwark/client/op"
)

// ExitStatus is the exit status a command sent to bulwarkd ends with, as the same command run
// locally would: Code, and Err to print (nil: nothing, the status says it all).
type ExitStatus struct {
	Code int
	Err  error
}

func (e *ExitStatus) Error() string {
	if e.Err == nil {
		return ""
	}
	return e.Err.Error()
}

func (e *ExitStatus) Unwrap() error { return e.Err }

// RemoteExitStatus is the status the process ends with (clibase.ExitCode).
func (e *ExitStatus) RemoteExitStatus() int { return e.Code }

// Send runs the command o through bulwarkd as bulwark runs it locally: its output to out and
// errOut, stdin sent to an interactive exec, the caller's signals forwarded to a foreground run.
// The error is nil for a command that succeeded, an *ExitStatus where the command has a status of
// its own (a workload's, a failed container of several), else the failure, whose class gives
// the status (errdefs).
func (c *Client) Send(ctx context.Context, o *op.Op, stdin io.Reader, out, errOut io.Writer) error {
	// each is a command on several containers: docker's output, status 1 if any failed.
	each := func(fn func(id string) error) error {
		if forEach(out, errOut, o.IDs, fn) {
			return &ExitStatus{Code: 1}
		}
		return nil
	}
	switch o.Command {
	case op.Run:
		if o.DryRun {
			return c.DryRun(ctx, o.Run, out, errOut)
		}
		sigs := make(chan os.Signal, 8)
		if !o.Run.Detach {
			signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
			defer signal.Stop(sigs)
		}
		code, err := c.Run(ctx, o.Run, out, errOut, sigs)
		if err != nil {
			return &ExitStatus{Code: code, Err: err}
		}
		if o.Run.Detach {
			return nil
		}
		return &ExitStatus{Code: code}
	case op.Exec:
		if !o.Interactive {
			stdin = nil
		}
		code, err := c.Exec(ctx, o.IDs[0], *o.Exec, stdin, out, errOut)
		return &ExitStatus{Code: code, Err: err}
	case op.PS:
		return c.PS(ctx, out, o.All, o.Quiet)
	case op.Inspect:
		return c.InspectAll(ctx, out, o.IDs)
	case op.Logs:
		return c.PrintLogs(ctx, out, errOut, o.IDs[0], o.Follow, o.Timestamps)
	case op.Stop:
		return each(func(id string) error { return c.Stop(ctx, id, &o.Timeout) })
	case op.Kill:
		return each(func(id string) error { return c.Kill(ctx, id, o.Signal) })
	case op.Remove:
		return each(func(id string) error { return c.Remove(ctx, id, o.Force, o.Volumes) })
	case op.AuditVerify:
		if err := c.PrintAuditVerify(ctx, out); err != nil {
			return &ExitStatus{Code: 1, Err: err}
		}
		return nil
	case op.AuditTail:
		return c.AuditTail(ctx, out, o.Lines)
	}
	return fmt.Errorf("no such command for bulwarkd: %s", o.Command)
}
