package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"bulwark.dev/bulwark/client"
	"bulwark.dev/bulwark/cmd/internal/clibase"
	"bulwark.dev/bulwark/engine"
)

// With --host (or BULWARK_HOST) the CLI sends its commands to bulwarkd (package client) instead
// of acting on a state root: the daemon decides who the caller is from the connection. Only the
// commands marked remote go there, with only the flags they list; any other command or flag is
// refused while --host is set, never run locally or dropped.

// remoteAnnotation marks a command that goes through bulwarkd; its value lists the flags it
// carries there, comma-separated.
const remoteAnnotation = "bulwark.remote-flags"

// remote is the annotation of a command that goes through bulwarkd with flags.
func remote(flags ...string) map[string]string {
	return map[string]string{remoteAnnotation: strings.Join(flags, ",")}
}

type clientKey struct{}

// useHost checks that cmd and the flags given can go through bulwarkd and puts the daemon's
// client into the command's context.
func useHost(cmd *cobra.Command, host string) error {
	list, ok := cmd.Annotations[remoteAnnotation]
	if !ok {
		return fmt.Errorf("'%s' cannot go through bulwarkd (--host or %s is set): run it without them on the daemon's host", strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" "), client.HostEnv)
	}
	allowed := strings.Split(list, ",")
	var refused []string
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if f.Name != "host" && !slices.Contains(allowed, f.Name) {
			refused = append(refused, "--"+f.Name)
		}
	})
	if len(refused) > 0 {
		return fmt.Errorf("'%s': %s cannot go through bulwarkd (--host or %s is set; the daemon takes the tenant and the state root from its own configuration)",
			strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" "), strings.Join(refused, ", "), client.HostEnv)
	}
	c, err := client.New(host)
	if err != nil {
		return err
	}
	cmd.SetContext(context.WithValue(cmd.Context(), clientKey{}, c))
	return nil
}

// remoteOf is the daemon's client when the command goes through bulwarkd, else nil.
func remoteOf(cmd *cobra.Command) *client.Client {
	c, _ := cmd.Context().Value(clientKey{}).(*client.Client)
	return c
}

// runRemote is bulwark run through bulwarkd.
func runRemote(cmd *cobra.Command, c *client.Client, req *engine.Request, dryRun bool) error {
	ctx, out, errOut := cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr()
	if dryRun {
		return c.DryRun(ctx, req, out, errOut)
	}
	sigs := make(chan os.Signal, 8)
	if !req.Detach {
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
		defer signal.Stop(sigs)
	}
	code, err := c.Run(ctx, req, out, errOut, sigs)
	if err != nil {
		return &clibase.ExitError{Code: code, Err: err}
	}
	if req.Detach {
		return nil
	}
	return &clibase.ExitError{Code: code, Err: errSilent}
}

// eachRemote is eachContainer through bulwarkd.
func eachRemote(cmd *cobra.Command, args []string, fn func(id string) error) error {
	if client.Each(cmd.OutOrStdout(), cmd.ErrOrStderr(), args, fn) {
		return &clibase.ExitError{Code: 1, Err: errSilent}
	}
	return nil
}
