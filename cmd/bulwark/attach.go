package main

import (
	"errors"
	"os"

	"github.com/spf13/cobra"

	"bulwark.dev/bulwark/cmd/internal/clibase"
	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/internal/console"
)

func newAttachCmd() *cobra.Command {
	var keys string
	c := &cobra.Command{
		Use:   "attach [--detach-keys KEYS] CONTAINER",
		Short: "Connect your terminal to a container started with -d -t (detach: ctrl-p ctrl-q)",
		Long: `Attach connects your terminal to the terminal of a container started with run -d -t: its
output, your input, your window size. The detach keys (default ctrl-p,ctrl-q) leave it running.
Exit status: the workload's when it exits while attached; 0 after detaching.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			seq, err := console.ParseDetachKeys(keys)
			if err != nil {
				return err
			}
			return withEngine(cmd, func(e *engine.Engine) error {
				a, err := e.Attach(args[0])
				if err != nil {
					return err
				}
				defer a.Close()
				detached, stop, err := console.Connect(os.Stdin, a, seq)
				if err != nil {
					return err
				}
				code, exited, err := a.Copy(cmd.OutOrStdout())
				stop()
				select {
				case <-detached:
					return nil
				default:
				}
				if err != nil {
					return err
				}
				if !exited {
					return errors.New("the container's monitor closed the connection without an exit status")
				}
				return &clibase.ExitError{Code: code, Err: errSilent}
			})
		},
	}
	c.Flags().StringVar(&keys, "detach-keys", console.DefaultDetachKeys, "key sequence that detaches (Docker syntax: a,ctrl-b,...)")
	return c
}
