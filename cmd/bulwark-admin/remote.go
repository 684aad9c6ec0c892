package main

import (
	"errors"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"bulwark.dev/bulwark/client"
	"bulwark.dev/bulwark/client/op"
	"bulwark.dev/bulwark/cmd/internal/clibase"
)

// newRemoteCmd is the hidden command that sends to bulwarkd the command bulwark parsed
// (op.Env), in bulwark's place: its output, exit status and signals are the command's.
func newRemoteCmd() *cobra.Command {
	return &cobra.Command{
		Use:    op.Command,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := op.Take()
			if errors.Is(err, os.ErrNotExist) {
				return errors.New(op.Command + ": no command for bulwarkd (bulwark runs it with --host)")
			}
			if err != nil {
				return err
			}
			c, err := client.New(o.Host)
			if err != nil {
				return err
			}
			return sendOp(cmd, c, o)
		},
	}
}

// errSilent carries an exit status without printing anything.
var errSilent = errors.New("")

// sendOp is o through bulwarkd, with the exit statuses of the command run locally.
func sendOp(cmd *cobra.Command, c *client.Client, o *op.Op) error {
	ctx, out, errOut := cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr()
	each := func(fn func(id string) error) error {
		if client.Each(out, errOut, o.IDs, fn) {
			return &clibase.ExitError{Code: 1, Err: errSilent}
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
			return &clibase.ExitError{Code: code, Err: err}
		}
		if o.Run.Detach {
			return nil
		}
		return &clibase.ExitError{Code: code, Err: errSilent}
	case op.Exec:
		var stdin io.Reader
		if o.Interactive {
			stdin = os.Stdin
		}
		code, err := c.Exec(ctx, o.IDs[0], *o.Exec, stdin, out, errOut)
		if err != nil {
			return &clibase.ExitError{Code: code, Err: err}
		}
		return &clibase.ExitError{Code: code, Err: errSilent}
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
			return &clibase.ExitError{Code: 1, Err: err}
		}
		return nil
	case op.AuditTail:
		return c.AuditTail(ctx, out, o.Lines)
	}
	return errors.New("no such command for bulwarkd: " + string(o.Command))
}
