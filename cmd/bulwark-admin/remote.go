package main

import (
	"errors"
	"os"

	"github.com/spf13/cobra"

	"bulwark.dev/bulwark/client"
	"bulwark.dev/bulwark/client/op"
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
			return c.Send(cmd.Context(), o, os.Stdin, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
}
